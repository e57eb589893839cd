"""graphql-schema-linter (npm, tests/schema_lint/) over the schema as `cpl-pathways schema`
prints it: no finding under its built-in rules, but those its configuration
(tests/schema_lint/graphql-schema-linter.config.js) disables with a reason, and each of those
still finds something (else it is enabled again).

Node and the folder's packages come with `make node`. Without them the test is skipped with the
reason, except under CI=true, where it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from schema.build import sdl

FOLDER = Path(__file__).resolve().parent / "schema_lint"
LINTER = FOLDER / "node_modules" / ".bin" / "graphql-schema-linter"
NODE = shutil.which("node") or "node"
MISSING = [
    what
    for what, present in [
        ("node", shutil.which("node") is not None),
        ("graphql-schema-linter in tests/schema_lint", LINTER.exists()),
    ]
    if not present
]
if MISSING and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI=true: the schema lint needs {', '.join(MISSING)} (make node)")
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"no {', '.join(MISSING)}: run `make node` to install them"
)


def findings(*arguments: str) -> list[dict]:
    """The linter's findings on the generated SDL, read from standard input, with the
    configuration found in its folder."""
    done = subprocess.run(
        [NODE, str(LINTER), "--stdin", "--format", "json", *arguments],
        cwd=FOLDER,
        input=sdl(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: it found something
    return json.loads(done.stdout)["errors"]


def disabled() -> dict[str, str]:
    done = subprocess.run(
        [NODE, "-p", 'JSON.stringify(require("./graphql-schema-linter.config.js").disabled)'],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_the_schema_has_no_finding_under_the_linters_rules() -> None:
    assert [f"{error['rule']}: {error['message']}" for error in findings()] == []


def test_each_disabled_rule_has_a_reason_and_still_finds_something() -> None:
    reasons = disabled()
    assert reasons and all(len(reason) > 40 for reason in reasons.values())
    found = {error["rule"] for error in findings("--rules", ",".join(reasons))}
    assert sorted(set(reasons) - found) == [], "these find nothing now: enable them again"
