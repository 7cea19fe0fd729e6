"""Data flows one way: connectors -> storage -> features -> alerts -> pipelines and web (docs/architecture.md).

A package may import the packages below it, never one above, not even inside a function: a back-edge is how
"fetching touches no database" and "composition never reads the store" quietly stop being true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# pipelines and web share the top: the CLI starts the web door, and the door calls what the CLI calls.
LAYERS = ("connectors", "storage", "features", "alerts", "pipelines", "web")


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(LAYERS)


def upward_imports(package: str) -> list[str]:
    above = set(LAYERS[LAYERS.index(package) + 1:])
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for name in sorted(imported_packages(path) & above):
            found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


@pytest.mark.parametrize("package", LAYERS[:-2])
def test_no_package_imports_a_package_above_it(package):
    assert upward_imports(package) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from alerts.rules import decide\n    import pipelines.steps\n")
    assert imported_packages(planted) == {"alerts", "pipelines"}
