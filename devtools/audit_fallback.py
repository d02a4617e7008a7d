"""Judges pip-audit's JSON report and audits what it skipped against PyPI's latest-release data.

Why: behind some proxies (this project's sandbox and CI) PyPI's per-version endpoint
`/pypi/<name>/<version>/json` answers 404, so pip-audit skips every dependency as "not found on
PyPI" and still exits 0, and api.osv.dev is unreachable. `/pypi/<name>/json` (the latest release,
with its `vulnerabilities` list) does answer. So for each skipped pin:

- pin == latest release: that list applies exactly; any vulnerability not documented in
  `.ci/audit-ignore.txt` fails the check;
- pin older than latest: reported as not auditable here (bump the pin to make it auditable).

pypi.org unreachable (or any lookup failing) fails the check: no silent pass. Stdlib only.

    python -m devtools.audit_fallback build/pip-audit.json
    python -m devtools.audit_fallback --ignore-args      # "--ignore-vuln ID" for pip-audit
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IGNORE_FILE = Path(__file__).resolve().parent.parent / ".ci" / "audit-ignore.txt"
PYPI_JSON = "https://pypi.org/pypi/{name}/json"
NOT_FOUND_SKIP = re.compile(
    r"not found on PyPI and could not be audited: (?P<name>\S+) \((?P<version>[^)]+)\)$"
)

STATUSES = ("error", "vulnerable", "ignored", "not auditable", "clean")

# A project's latest-release document, or None when PyPI does not know the project; OSError when
# PyPI cannot be reached.
Fetch = Callable[[str], dict[str, Any] | None]


class AuditError(Exception):
    """The audit cannot give an answer (unreadable report or ignore file, PyPI unreachable)."""


@dataclass
class Outcome:
    """What was found for one dependency."""

    name: str
    version: str
    status: str  # one of STATUSES
    detail: str = ""
    vulns: list[str] = field(default_factory=list)


def load_ignores(path: Path = IGNORE_FILE) -> dict[str, str]:
    """Accepted vulnerability ids with their reasons: one `ID  reason` a line, `#` comments."""
    ignores: dict[str, str] = {}
    if not path.exists():
        return ignores
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        vuln_id, _, reason = line.partition(" ")
        if not reason.strip():
            raise AuditError(f"{path}:{number}: {vuln_id} needs a reason after the id")
        ignores[vuln_id] = reason.strip()
    return ignores


def fetch_latest(name: str, timeout: float = 20.0, retries: int = 1) -> dict[str, Any] | None:
    """PyPI's JSON for the project's latest release, None on 404; OSError when unreachable."""
    url = PYPI_JSON.format(name=name)
    try:
        # A fixed https URL on pypi.org, not user input.
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  # nosec B310
            return json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        if not retries:
            raise
    except (OSError, ValueError) as error:
        if not retries:
            raise OSError(f"{type(error).__name__}: {error}") from error
    return fetch_latest(name, timeout, retries - 1)


def _describe(vuln: dict[str, Any]) -> str:
    fixed = ", ".join(vuln.get("fixed_in") or []) or "no fix yet"
    aliases = ", ".join(vuln.get("aliases") or [])
    return f"{vuln.get('id')}{f' ({aliases})' if aliases else ''}, fixed in {fixed}"


def _judge_vulns(
    name: str, version: str, vulns: Iterable[dict[str, Any]], ignores: dict[str, str]
) -> Outcome:
    """Vulnerable unless every vulnerability (by id or alias) is documented in the ignore file."""
    open_vulns, accepted = [], []
    for vuln in vulns:
        ids = {vuln.get("id"), *(vuln.get("aliases") or [])}
        (accepted if ids & ignores.keys() else open_vulns).append(_describe(vuln))
    if open_vulns:
        return Outcome(name, version, "vulnerable", vulns=open_vulns + accepted)
    if accepted:
        return Outcome(name, version, "ignored", vulns=accepted)
    return Outcome(name, version, "clean")


def audit_skipped(name: str, version: str, fetch: Fetch, ignores: dict[str, str]) -> Outcome:
    """One dependency pip-audit skipped, judged from its project's latest-release document."""
    try:
        document = fetch(name)
    except OSError as error:
        return Outcome(name, version, "error", f"PyPI lookup failed: {error}")
    if document is None:
        return Outcome(name, version, "not auditable", "not found on PyPI")
    latest = str(document.get("info", {}).get("version", ""))
    if latest.lower() != version.lower():
        return Outcome(name, version, "not auditable", f"not auditable here (pin {version}, latest {latest})")
    live = [vuln for vuln in document.get("vulnerabilities") or [] if not vuln.get("withdrawn")]
    return _judge_vulns(name, version, live, ignores)


def judge_report(report: dict[str, Any], fetch: Fetch, ignores: dict[str, str]) -> list[Outcome]:
    """Every dependency of a pip-audit JSON report that needs attention or a fallback audit."""
    outcomes: list[Outcome] = []
    skipped: list[tuple[str, str]] = []
    for dependency in report.get("dependencies", []):
        name = dependency["name"]
        if "skip_reason" in dependency:
            match = NOT_FOUND_SKIP.search(dependency["skip_reason"])
            if match is None:
                outcomes.append(Outcome(name, "?", "error", f"skipped: {dependency['skip_reason']}"))
            else:
                skipped.append((match["name"], match["version"]))
        elif dependency.get("vulns"):
            vulns = [
                {"id": v["id"], "aliases": v.get("aliases"), "fixed_in": v.get("fix_versions")}
                for v in dependency["vulns"]
            ]
            outcomes.append(_judge_vulns(name, dependency["version"], vulns, ignores))
    with ThreadPoolExecutor(max_workers=8) as pool:
        fallback = list(pool.map(lambda pin: audit_skipped(*pin, fetch, ignores), skipped))
    if fallback and all(outcome.status == "error" for outcome in fallback):
        raise AuditError(f"pypi.org could not be reached, nothing was audited ({fallback[0].detail})")
    return outcomes + fallback


def summarize(report: dict[str, Any], outcomes: list[Outcome]) -> tuple[list[str], bool]:
    """The lines to print (what needs attention, then the counts) and whether the audit passes."""
    dependencies = report.get("dependencies", [])
    skipped = sum("skip_reason" in dependency for dependency in dependencies)
    counts = {status: sum(o.status == status for o in outcomes) for status in STATUSES}
    lines: list[str] = []
    for outcome in sorted(outcomes, key=lambda o: (STATUSES.index(o.status), o.name)):
        if outcome.status != "clean":
            lines.append(f"{outcome.status:>13}  {outcome.name} {outcome.version}  {outcome.detail}".rstrip())
            lines += [f"{'':>15}{vuln}" for vuln in outcome.vulns]
    lines.append(
        f"pip-audit: {len(dependencies) - skipped} audited, {skipped} skipped. Its findings and the"
        f" fallback's: {counts['clean']} clean, {counts['ignored']} with documented vulnerabilities only,"
        f" {counts['vulnerable']} vulnerable, {counts['not auditable']} not auditable here,"
        f" {counts['error']} errors"
    )
    return lines, counts["vulnerable"] == 0 and counts["error"] == 0


def main(argv: list[str] | None = None, fetch: Fetch = fetch_latest) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", nargs="?", type=Path, help="pip-audit's `-f json` output")
    parser.add_argument("--ignore-file", type=Path, default=IGNORE_FILE)
    parser.add_argument("--ignore-args", action="store_true", help="print pip-audit's --ignore-vuln options")
    args = parser.parse_args(argv)
    try:
        ignores = load_ignores(args.ignore_file)
        if args.ignore_args:
            print(" ".join(f"--ignore-vuln {vuln_id}" for vuln_id in ignores))
            return 0
        if args.report is None:
            parser.error("the pip-audit report is required")
        try:
            report = json.loads(args.report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise AuditError(f"cannot read the pip-audit report {args.report}: {error}") from error
        outcomes = judge_report(report, fetch, ignores)
    except AuditError as error:
        print(f"audit: FAILED: {error}", file=sys.stderr)
        return 1
    lines, passed = summarize(report, outcomes)
    print("\n".join(lines))
    if not passed:
        print("audit: FAILED (vulnerabilities or failed lookups above; document accepted vulnerabilities"
              f" in {IGNORE_FILE.relative_to(IGNORE_FILE.parent.parent)})", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
