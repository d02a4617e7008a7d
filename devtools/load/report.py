"""The load run's table: steps (requests, rate, latency), mistakes, errors, outcomes, invariants."""

from __future__ import annotations

import os
import platform
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.load.invariants import Check, PaymentRow

STEP_ORDER = ("identify", "login (wrong password)", "login", "obligations", "banks",
              "pay (under the minimum)", "pay", "pay (double click, same key)",
              "pay (double click, new key)", "bank page", "bank outcome (sandbox)",
              "webhook (replayed, out of order)", "return from the bank", "receipt", "history",
              "logout")


@dataclass
class Figures:
    users: int
    duration: float
    spawn_rate: float
    pace: float
    setup_seconds: float
    bcrypt_cost: str | None  # None: a given stack, whose cost this run does not know
    stats: Any  # locust.stats.RequestStats
    expected: Mapping[str, int]
    problems: Mapping[str, int]
    late_webhooks: int
    outcomes: Mapping[str, int]
    payments: list[PaymentRow]
    drained: Mapping[str, int]
    checks: list[Check]
    cpu: Mapping[str, tuple[float, float]]  # process -> (mean, max) % of one core
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


def machine() -> str:
    """CPU count and model, as the README's figures need them."""
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text("utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def _row(name: str, entry: Any, duration: float) -> str:
    n = entry.num_requests
    if not n:
        return f"| {name:<34} | {0:>8} | {0:>6.1f} | {'-':>6} | {'-':>6} | {'-':>6} | {0:>5} |"
    p50, p95, p99 = (entry.get_response_time_percentile(q) for q in (0.5, 0.95, 0.99))
    return (f"| {name:<34} | {n:>8} | {n / duration:>6.1f} | {p50:>6} | {p95:>6} | {p99:>6} | "
            f"{entry.num_failures:>5} |")


def _counts(title: str, counts: Mapping[str, int], empty: str) -> list[str]:
    lines = [title]
    lines += [f"  {count:>7}  {kind}" for kind, count in sorted(counts.items())] or [f"  {empty}"]
    return lines


def render(f: Figures) -> str:
    """The whole table as Markdown-friendly text."""
    names = [name for name in STEP_ORDER if any(k[0] == name for k in f.stats.entries)]
    names += sorted({k[0] for k in f.stats.entries} - set(names))
    by_name = {k[0]: v for k, v in f.stats.entries.items()}
    cost = f"bcrypt cost {f.bcrypt_cost}" if f.bcrypt_cost else "the given stack's bcrypt cost"
    statuses = Counter(p.status + (" (flagged)" if p.flagged else "") for p in f.payments)
    lines = [
        f"Payday load test: {f.users} members, {f.duration:.0f} s of load (arriving "
        f"{f.spawn_rate:g}/s, pace {f.pace:g}), "
        f"{cost}; first access of every member {f.setup_seconds:.0f} s before it",
        f"Machine: {machine()}; load average {f.load_before[0]:.1f} before, "
        f"{f.load_after[0]:.1f} after",
        "",
        f"| {'step':<34} | {'requests':>8} | {'req/s':>6} | {'p50 ms':>6} | {'p95 ms':>6} | "
        f"{'p99 ms':>6} | {'unexp':>5} |",
        f"|{'-' * 36}|{'-' * 10}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 7}|",
        *(_row(name, by_name[name], f.duration) for name in names),
        _row("all steps", f.stats.total, f.duration),
        "",
        *_counts("Mistakes answered as they should be:", f.expected, "none"),
        *_counts("Unexpected answers, by kind:", f.problems, "none"),
        f"Webhooks the sandbox stopped waiting for after 5 s (applied anyway, or by the poller): "
        f"{f.late_webhooks}",
        *_counts("What the banks answered (status, notification):", f.outcomes, "none"),
        *_counts("Payments at the end:", statuses, "none"),
        *_counts("Drain:", f.drained, "nothing"),
        "CPU during the load (% of one core, mean / max):",
        *(f"  {mean:>5.0f} / {top:>3.0f}  {name}" for name, (mean, top) in f.cpu.items()),
        "",
        "Invariants:",
    ]
    for check in f.checks:
        lines.append(f"  [{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        lines += [f"         {example}" for example in check.examples]
    return "\n".join(lines) + "\n"
