"""The layers hold: each package imports only the packages below it, nothing sits loose at the
root, every production module stays small, and ARCHITECTURE.md names only modules that exist,
with a home for each thing a newcomer comes to add.

The order is written once here and once in ARCHITECTURE.md's table of floors; the test reads
the imports with `ast`, so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Bottom to top: a package imports only those before it, and itself.
LAYERS = ("config", "models", "permissions", "resolvers", "notifications", "schema", "server")
# What may sit at the repository's root besides these packages: folders of tests, benchmarks,
# tools, docs and the container, and no Python module at all.
OTHER_FOLDERS = {"bench", "docker", "docs", "examples", "requirements", "tests", "tools"}
MAX_LINES = 400
# The benchmarks are code a newcomer reads too (bench/run.py was once 1,000 lines of five ideas):
# the line check holds them as it holds every production module.
SMALL = (*LAYERS, "bench")


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """The top-level packages of everything `path` imports; a relative import is of its own
    package (`permissions/` uses a few), which the layers allow."""
    own = path.relative_to(ROOT).parts[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(own if node.level else (node.module or "").split(".")[0])
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_a_package_imports_only_the_packages_below_it(package: str) -> None:
    above = set(LAYERS[LAYERS.index(package) + 1 :])
    upward = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(package)
        for name in imported(path) & above
    }
    assert not upward


def test_the_schema_knows_nothing_of_the_http_shell() -> None:
    assert not [path for path in modules("schema") if "server" in imported(path)]


def test_nothing_sits_loose_at_the_root() -> None:
    assert not sorted(path.name for path in ROOT.glob("*.py"))
    folders = {
        path.name
        for path in ROOT.iterdir()
        if path.is_dir() and not path.name.startswith(".") and not path.name.endswith("egg-info")
    }
    assert folders - {"var", "__pycache__"} <= set(LAYERS) | OTHER_FOLDERS


def test_every_production_and_benchmark_module_is_at_most_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for package in SMALL
        for path in modules(package)
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long


def test_architecture_names_the_layers_in_the_tests_order() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    floors = re.findall(r"^\| (\d+) \| `(\w+)/` \|", text, re.MULTILINE)
    assert [name for _, name in sorted(floors, key=lambda floor: int(floor[0]))] == list(LAYERS)


def test_every_module_architecture_names_exists() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    named = set(re.findall(r"`([\w./]+/[\w.]*)`", text))
    assert named, "ARCHITECTURE.md names no module"
    assert sorted(name for name in named if not (ROOT / name).exists()) == []


# What ARCHITECTURE.md's "Where to add" must name a home for (issue 25).
WHERE_TO_ADD = (
    "An HTTP header",
    "A GraphQL field",
    "A policy rule",
    "A write rule",
    "A table",
    "A notification channel",
    "A dependency",
)


def where_to_add() -> dict[str, str]:
    """The section's bullets: what to add, and the text that says where."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    section = text.split("## Where to add", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"^- \*\*(.+?)\*\*: (.*?)(?=^- |\Z)", section, re.MULTILINE | re.DOTALL)
    return dict(found)


def test_where_to_add_names_an_existing_home_for_each_concern() -> None:
    bullets = where_to_add()
    assert sorted(bullets) == sorted(WHERE_TO_ADD)
    for concern, text in bullets.items():
        named = re.findall(r"`([\w./]+/[\w.]*)`", text)
        assert named, f"{concern}: names no module"
        assert [name for name in named if not (ROOT / name).exists()] == [], concern


def test_where_to_add_names_what_each_module_holds() -> None:
    """`module.py` (`Name`): the module holds that name, so a rename cannot leave it stale."""
    stale = [
        f"{path} has no {name}"
        for text in where_to_add().values()
        for path, name in re.findall(r"`([\w/]+\.py)`\s+\(`(\w+)`", text)
        if not re.search(rf"\b{name}\b", (ROOT / path).read_text())
    ]
    assert stale == []
