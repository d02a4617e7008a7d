"""The layers' rules, checked on the source (docs/architecture.md): the domain imports only itself,
the use cases never reach storage directly, and no module takes another module's private name."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("chalicelib", "tests", "devtools", "bench", "app")
STORAGE = ("pynamodb", "botocore", "boto3", "chalicelib.adapters.dynamo")


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def everything() -> list[Path]:
    return [*modules("chalicelib", "tests", "devtools", "bench"), ROOT / "app.py"]


def imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield base, [a.name for a in node.names], node.lineno


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_the_domain_imports_nothing_outside_it() -> None:
    outside = [f"{where(p, line)} imports {module}" for p in modules("chalicelib/domain")
               for module, _, line in imports(p)
               if (module.startswith("chalicelib") and not module.startswith("chalicelib.domain"))
               or module.split(".")[0] in {"pynamodb", "botocore", "boto3", "babel", "chalice"}]
    assert outside == []


@pytest.mark.parametrize("folder", ["chalicelib/services", "chalicelib/domain"])
def test_use_cases_and_domain_never_reach_storage(folder: str) -> None:
    reached = [f"{where(p, line)} imports {module}" for p in modules(folder)
               for module, _, line in imports(p)
               if any(module == s or module.startswith(s + ".") for s in STORAGE)]
    assert reached == []


def test_no_module_imports_another_modules_private_name() -> None:
    private = [f"{where(p, line)} takes {name} from {module}"
               for p in everything()
               for module, names, line in imports(p)
               for name in names if name.startswith("_") and not name.startswith("__")]
    assert private == []


def private_attributes(path: Path) -> Iterator[str]:
    """``module._name`` where ``module`` is a name this file imported from the project."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom)
                and ((node.module or "") if isinstance(node, ast.ImportFrom) else node.names[0].name)
                .startswith(OURS) for alias in node.names}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in imported and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            yield f"{where(path, node.lineno)} uses {node.value.id}.{node.attr}"


def test_no_module_reaches_into_another_modules_private_attribute() -> None:
    reached = [found for p in everything()
               for found in private_attributes(p)]
    assert reached == []
