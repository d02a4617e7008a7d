"""The audit trail is append-only: no code path updates or deletes an AuditEvent.

Audit items are only ever built by ``repositories.audit_event`` (through ``services.audit``) and
written with ``save()`` or a transaction's ``put``. This test reads the deployed code and fails on
any update or delete that could reach the audit table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
FORBIDDEN_METHODS = {"update", "delete", "batch_write", "delete_table", "update_item", "delete_item"}


def _audit_names(tree: ast.AST) -> set[str]:
    """Variables bound to audit items: ``x = audit_item(...)``, ``x = repo.audit_event(...)``,
    ``x = AuditEvent(...)`` and loop variables over ``AuditEvent.query(...)``."""
    names: set[str] = set()
    makers = {"audit_item", "audit_event", "AuditEvent", "record"}

    def makes_audit(node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in makers:
                return True
            if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                    and func.value.id == "AuditEvent"):
                return True
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and makes_audit(node.value):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        if isinstance(node, (ast.For, ast.comprehension)) and makes_audit(node.iter):
            target = node.target
            if isinstance(target, ast.Name):
                names.add(target.id)
    return names


def _offences(source: str, where: str) -> list[str]:
    tree = ast.parse(source)
    audit_vars = _audit_names(tree) | {"AuditEvent"}
    found: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        target = node.func.value
        # AuditEvent.update(...), audit.delete(...), audit_item(...).delete()
        if method in FORBIDDEN_METHODS:
            if isinstance(target, ast.Name) and target.id in audit_vars:
                found.append(f"{where}:{node.lineno} {target.id}.{method}()")
            if isinstance(target, ast.Call):
                func = target.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ("audit_item", "audit_event", "AuditEvent"):
                    found.append(f"{where}:{node.lineno} {name}(...).{method}()")
        # a transaction deleting or updating an audit item: tx.delete(audit) / tx.update(audit, ...)
        if method in ("delete", "update") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Name) and first.id in audit_vars - {"AuditEvent"}:
                found.append(f"{where}:{node.lineno} .{method}({first.id})")
    # Low-level access to the audit table by name.
    for match in re.finditer(r"(delete_item|update_item|DeleteRequest)[^\n]*audit", source, re.IGNORECASE):
        found.append(f"{where}: {match.group(0)[:80]}")
    return found


def test_no_code_updates_or_deletes_audit_events() -> None:
    offences: list[str] = []
    for path in SOURCES:
        offences += _offences(path.read_text("utf-8"), str(path.relative_to(ROOT)))
    assert not offences, "the audit trail must stay append-only:\n" + "\n".join(offences)


def test_the_repository_offers_no_way_to_change_an_audit_event() -> None:
    from chalicelib.adapters.dynamo import backoffice_repo, repositories

    for module in (repositories, backoffice_repo):
        names = [n for n in dir(module) if "audit" in n.lower()]
        assert names, module.__name__
        assert not [n for n in names if re.search(r"update|delete|remove|edit|purge", n)], names


def test_the_scan_catches_an_offence() -> None:
    """The detector itself works: planted updates and deletes are found."""
    bad = ("def f(ctx, tx):\n"
           "    a = audit_item(ctx)\n"
           "    a.update(actions=[])\n"
           "    tx.delete(a)\n"
           "    for e in AuditEvent.query('x'):\n"
           "        e.delete()\n"
           "    AuditEvent.batch_write()\n")
    assert len(_offences(bad, "planted")) == 4
    assert _offences("def g(ctx):\n    audit_item(ctx).save()\n", "fine") == []
