"""Rows and the one table the benchmark prints (measure | figure | budget | verdict)."""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

OK = "ok"
OVER = "OVER"
INFO = "-"
NA = "n/a"
ERROR = "ERROR"  # the harness could not measure this row (makes the run exit 1)


@dataclass(frozen=True)
class Row:
    measure: str
    figure: str
    budget: str = "-"
    verdict: str = INFO
    section: str = ""


def within(value: float, limit: float) -> str:
    return OK if value <= limit else OVER


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def spread(seconds: Sequence[float]) -> str:
    """Median with the inter-quartile range, in ms (how noisy a figure was)."""
    q = statistics.quantiles(seconds, n=4) if len(seconds) >= 4 else [min(seconds), 0, max(seconds)]
    return f"{median(seconds) * 1000:.2f} ms (IQR {q[0] * 1000:.2f}-{q[2] * 1000:.2f}, n={len(seconds)})"


def render(rows: Iterable[Row], *, title: str, notes: Sequence[str] = ()) -> str:
    rows = list(rows)
    header = Row("measure", "figure", "budget", "verdict")
    widths = [max(len(getattr(r, f)) for r in [header, *rows])
              for f in ("measure", "figure", "budget", "verdict")]

    def line(r: Row) -> str:
        cells = [r.measure.ljust(widths[0]), r.figure.ljust(widths[1]),
                 r.budget.ljust(widths[2]), r.verdict.ljust(widths[3])]
        return " | ".join(cells).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    out = [title, "", line(header), rule]
    section = None
    for r in rows:
        if r.section and r.section != section:
            if section is not None:
                out.append(rule)
            section = r.section
        out.append(line(r))
    if notes:
        out.append("")
        out.append("Notes:")
        for note in notes:
            out.extend(textwrap.wrap(note, width=100, initial_indent="  - ", subsequent_indent="    ",
                                     break_on_hyphens=False))
    return "\n".join(out) + "\n"
