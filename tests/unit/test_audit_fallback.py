"""devtools/audit_fallback.py: judging pip-audit's report, with PyPI's answers injected."""

import json
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest

from devtools import audit_fallback
from devtools.audit_fallback import AuditError, judge_report, load_ignores, main


def skipped(name: str, version: str) -> dict[str, str]:
    reason = f"Dependency not found on PyPI and could not be audited: {name} ({version})"
    return {"name": name, "skip_reason": reason}


def latest(version: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    return {"info": {"version": version}, "vulnerabilities": list(vulns)}


def vuln(vuln_id: str, *, aliases: tuple[str, ...] = (), withdrawn: str | None = None) -> dict[str, Any]:
    return {"id": vuln_id, "aliases": list(aliases), "fixed_in": ["9.9.9"], "withdrawn": withdrawn}


def fake_pypi(documents: dict[str, dict[str, Any] | None]):
    """A fetch answering from `documents`; a name mapped to OSError raises it (PyPI unreachable)."""
    def fetch(name: str) -> dict[str, Any] | None:
        answer = documents[name]
        if answer is OSError:
            raise OSError("connection refused")
        return answer
    return fetch


def by_name(report: dict[str, Any], documents: dict[str, Any], ignores: dict[str, str] | None = None):
    outcomes = judge_report(report, fake_pypi(documents), ignores or {})
    return {outcome.name: outcome for outcome in outcomes}


def test_a_pin_at_the_latest_release_is_judged_by_its_vulnerability_list() -> None:
    report = {"dependencies": [skipped("jinja2", "3.1.6"), skipped("boto3", "1.44.5")]}
    outcomes = by_name(report, {"jinja2": latest("3.1.6"), "boto3": latest("1.44.5", vuln("GHSA-1"))})

    assert outcomes["jinja2"].status == "clean"
    assert outcomes["boto3"].status == "vulnerable"
    assert outcomes["boto3"].vulns == ["GHSA-1, fixed in 9.9.9"]


def test_an_older_pin_is_reported_as_not_auditable_with_both_versions() -> None:
    report = {"dependencies": [skipped("python-dateutil", "2.9.0.post0")]}
    outcome = by_name(report, {"python-dateutil": latest("4.0.0", vuln("GHSA-2"))})["python-dateutil"]

    assert outcome.status == "not auditable"
    assert outcome.detail == "not auditable here (pin 2.9.0.post0, latest 4.0.0)"


def test_documented_vulnerabilities_by_id_or_alias_are_accepted_and_withdrawn_ones_dropped() -> None:
    report = {"dependencies": [skipped("a", "1.0"), skipped("b", "2.0"), skipped("c", "3.0")]}
    documents = {
        "a": latest("1.0", vuln("GHSA-a", aliases=("CVE-2026-1",))),
        "b": latest("2.0", vuln("PYSEC-b"), vuln("GHSA-new")),
        "c": latest("3.0", vuln("GHSA-c", withdrawn="2026-01-01T00:00:00Z")),
    }
    outcomes = by_name(report, documents, {"CVE-2026-1": "not reachable", "PYSEC-b": "accepted"})

    assert outcomes["a"].status == "ignored"
    assert outcomes["b"].status == "vulnerable"
    assert outcomes["c"].status == "clean"


def test_vulnerabilities_pip_audit_found_itself_are_judged_too() -> None:
    found = {"id": "PYSEC-9", "aliases": [], "fix_versions": ["2.0"]}
    clean = {"name": "y", "version": "1", "vulns": []}
    report = {"dependencies": [{"name": "x", "version": "1.0", "vulns": [found]}, clean]}

    outcomes = by_name(report, {})

    assert list(outcomes) == ["x"]
    assert outcomes["x"].vulns == ["PYSEC-9, fixed in 2.0"]


def test_an_unknown_skip_reason_or_a_failed_lookup_is_an_error() -> None:
    report = {"dependencies": [{"name": "local", "skip_reason": "editable install"}, skipped("a", "1.0"),
                               skipped("b", "1.0")]}
    outcomes = by_name(report, {"a": OSError, "b": latest("1.0")})

    assert outcomes["local"].status == "error"
    assert outcomes["a"].status == "error"
    assert outcomes["b"].status == "clean"


def test_pypi_entirely_unreachable_fails_with_a_clear_message() -> None:
    report = {"dependencies": [skipped("a", "1.0"), skipped("b", "1.0")]}

    with pytest.raises(AuditError, match=r"pypi\.org could not be reached"):
        judge_report(report, fake_pypi({"a": OSError, "b": OSError}), {})


def test_the_ignore_file_needs_a_reason_for_every_id(tmp_path: Path) -> None:
    ignore_file = tmp_path / "audit-ignore.txt"
    ignore_file.write_text("# comment\n\nGHSA-1  dev tool only, never deployed\n", encoding="utf-8")
    assert load_ignores(ignore_file) == {"GHSA-1": "dev tool only, never deployed"}

    ignore_file.write_text("GHSA-2\n", encoding="utf-8")
    with pytest.raises(AuditError, match="needs a reason"):
        load_ignores(ignore_file)
    load_ignores()  # the project's own .ci/audit-ignore.txt is well formed


def test_main_passes_clean_reports_and_fails_vulnerable_ones(tmp_path: Path, capsys) -> None:
    report = tmp_path / "pip-audit.json"
    ignore_file = tmp_path / "audit-ignore.txt"
    ignore_file.write_text("GHSA-1 accepted for the test\n", encoding="utf-8")
    report.write_text(json.dumps({"dependencies": [skipped("a", "1.0"), skipped("b", "1.0")]}))
    args = [str(report), "--ignore-file", str(ignore_file)]

    assert main(args, fake_pypi({"a": latest("1.0", vuln("GHSA-1")), "b": latest("1.1")})) == 0
    output = capsys.readouterr().out
    assert "not auditable here (pin 1.0, latest 1.1)" in output
    assert "0 audited, 2 skipped" in output

    assert main(args, fake_pypi({"a": latest("1.0", vuln("GHSA-2")), "b": latest("1.0")})) == 1
    assert main(["--ignore-args", "--ignore-file", str(ignore_file)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "--ignore-vuln GHSA-1"


def test_main_fails_when_the_report_is_missing(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "absent.json"), "--ignore-file", str(tmp_path / "none.txt")]) == 1
    assert "cannot read the pip-audit report" in capsys.readouterr().err


def test_the_real_fetch_treats_404_as_unknown_and_retries_network_errors(monkeypatch) -> None:
    calls: list[str] = []
    failure: Exception = OSError("proxy down")

    def urlopen(url: str, timeout: float):
        calls.append(url)
        raise failure

    monkeypatch.setattr(audit_fallback.urllib.request, "urlopen", urlopen)
    with pytest.raises(OSError, match="proxy down"):
        audit_fallback.fetch_latest("jinja2")
    assert calls == ["https://pypi.org/pypi/jinja2/json"] * 2

    failure = HTTPError("https://pypi.org/pypi/nope/json", 404, "Not Found", Message(), None)
    assert audit_fallback.fetch_latest("nope") is None
