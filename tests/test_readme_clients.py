"""The README's TypeScript examples, as written: each `ts` block is type-checked by the
TypeScript compiler (strict) and run by tsx in Node against a live server, with the npm
packages of tests/clients/ (package-lock.json pinned, installed by `make node`). Where node or
those packages are missing the tests skip saying so; under CI=true they fail instead."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import ROOT, serve

HERE = ROOT / "tests" / "clients"
BIN = HERE / "node_modules" / ".bin"
BLOCKS = re.findall(r"^```ts\n(.*?)^```$", (ROOT / "README.md").read_text(), re.M | re.S)
TSC = ["--strict", "--noEmit", "--skipLibCheck", "--target", "es2022"]
TSC += ["--module", "nodenext", "--moduleResolution", "nodenext", "--types", "node"]


@pytest.fixture(scope="module")
def clients() -> None:
    missing = [] if shutil.which("node") else ["node"]
    missing += [str(BIN / tool) for tool in ("tsc", "tsx") if not (BIN / tool).exists()]
    if not missing:
        return
    reason = f"the TypeScript examples need {', '.join(missing)}: run `make node`"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def examples(clients) -> Iterator[list[Path]]:
    """The blocks as files beside tests/clients/node_modules (so that their imports resolve),
    removed afterwards."""
    folder = HERE / f"readme-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        files = [folder / f"example{n}.ts" for n in range(len(BLOCKS))]
        for path, block in zip(files, BLOCKS, strict=True):
            path.write_text(block)
        yield files
    finally:
        shutil.rmtree(folder)


def test_the_readme_has_a_fetch_and_an_apollo_client_example():
    assert len(BLOCKS) == 2
    fetch, apollo = BLOCKS
    assert "await fetch(" in fetch and "@apollo/client" not in fetch
    assert 'from "@apollo/client"' in apollo and "new ApolloClient(" in apollo
    assert all("http://127.0.0.1:8000/graphql" in block for block in BLOCKS)


def test_the_typescript_examples_type_check(examples):
    result = subprocess.run(
        [str(BIN / "tsc"), *TSC, *map(str, examples)],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def localise(example: Path, base: str) -> None:
    """The example as written, sent to the test's server instead of 127.0.0.1:8000."""
    example.write_text(example.read_text().replace("http://127.0.0.1:8000", base))


async def run(example: Path, base: str, token: str) -> str:
    localise(example, base)
    process = await asyncio.create_subprocess_exec(
        str(BIN / "tsx"),
        str(example),
        cwd=HERE,
        env={**os.environ, "CPL_TOKEN": token},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_the_typescript_examples_answer_from_a_live_server(examples, app, token):
    fetch, apollo = examples
    async with serve(app) as address:
        base = f"http://{address}"
        listed = await run(fetch, base, token("SMALL_SUPPLIER"))
        planned = await run(apollo, base, token("SMALL_SUPPLIER"))
    lines = listed.splitlines()
    assert lines[0] == "device:1 Aurora ESME Mk1: 64000300", listed
    assert len(lines) == 4 and re.fullmatch(r"3 of \d+ devices", lines[-1]), listed
    assert planned == "upgrade: 76000100 -> 64000300\n"


async def test_an_error_reaches_the_fetch_example_with_its_code(examples, app):
    fetch, _ = examples
    async with serve(app) as address:
        with pytest.raises(AssertionError, match=r"UNAUTHENTICATED|401"):
            await run(fetch, f"http://{address}", "not-a-token")
