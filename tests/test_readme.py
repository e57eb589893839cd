"""The README's examples, run as written against a real server, so that they cannot rot.

Every `sh` block runs, in order, in one bash script (later blocks use the `URL`, `q`, `S`, `M`
and `gql` of earlier ones) with the server's address for 127.0.0.1:8000; the `json` block is
the `fleet-plan.json` the next block sends; the `graphql` blocks are sent as the SSC's;
the Python blocks run (the subscriber follows a real change, both webhook checks verify what
the dispatcher signs). Not run here: the "CPL in and out" block (tests/test_readme_data.py runs
it with its example files), the `make` commands (they are CI itself), the `console` blocks of
Docker commands (no Docker engine: tests/test_container.py replays the image instead), the `ini`
excerpt of PgBouncer's settings (tests/test_pooler.py runs through PgBouncer) and the `js` block
for browsers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from notifications.signing import message_id, new_secret, signature_headers
from tests.live import DEADLINE, ROOT, cli, cli_env, cli_server, eventually, free_port

README = (ROOT / "README.md").read_text()
DATA_BLOCK = "BASE="  # how the "CPL in and out" block starts
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```$", README, re.MULTILINE | re.DOTALL)
CLI = str(Path(sys.executable).with_name("cpl-pathways"))
ADD_FIRMWARE = """mutation($v: String!) {
  addFirmware(input: { deviceId: "device:1", version: $v }) { __typename } }"""


def blocks(kind: str) -> list[str]:
    return [text for language, text in BLOCKS if language == kind]


def documents(output: str) -> list[dict]:
    """The JSON answers printed one after another."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := output.find("{", at)) != -1:
        document, at = decoder.raw_decode(output, at)
        found.append(document)
    return found


@pytest.fixture
async def server(own_database, tmp_path):
    """`cpl-pathways serve` on the test's own demo database: the examples write."""
    env = cli_env(own_database, tmp_path / "data")
    async with cli_server(env, tmp_path / "server.log") as running:
        yield running, env, tmp_path


def localised(text: str, base: str) -> str:
    return text.replace("http://127.0.0.1:8000", base).replace(
        "ws://127.0.0.1:8000", "ws://" + base[7:]
    )


async def test_every_shell_example_in_the_readme_answers_without_an_unexpected_error(server):
    running, env, tmp = server
    shell = [
        b
        for b in blocks("sh")
        if not all(line.startswith("make ") for line in b.splitlines() if line)
        and not b.startswith(DATA_BLOCK)  # run, with its example files, by test_readme_data.py
    ]
    assert len(shell) >= 6
    (fleet,) = blocks("json")
    (tmp / "fleet-plan.json").write_text(fleet)
    script = localised("set -euo pipefail\n" + "\n".join(shell), running.base)
    script = script.replace(".venv/bin/cpl-pathways", CLI)
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()
    answers = documents(stdout.decode())
    # One answer per command that sends a request (`q …`, `gql …` or `curl …` at a line's
    # start), but for those that print only the headers (`-o /dev/null`): the ETag example.
    commands = re.findall(r"^(?:q|gql|curl) .*$", script, re.MULTILINE)
    headers_only = [c for c in commands if "-o /dev/null" in c]
    assert len(answers) == len(commands) - len(headers_only)
    assert len(re.findall(r'(?im)^etag: "[^"]+"', stdout.decode())) == len(headers_only)
    # `PUT /fleet` answers the stored fleet's summary, not a GraphQL answer.
    (uploaded,) = [a for a in answers if "replacedAt" in a]
    assert (uploaded["rows"], uploaded["groups"], uploaded["meters"]) == (3, 2, 120_560)
    answers = [a for a in answers if a is not uploaded]
    for answer in answers:
        assert answer.get("data"), answer
        for error in answer.get("errors", []):
            # The one documented error: a Manufacturer asking for an SSC-only field.
            assert error["extensions"]["code"] == "FORBIDDEN", answer
            assert error["path"][-1] == "zigbeeChipsetVendor"
    payloads = [v for a in answers for v in a["data"].values() if "__typename" in (v or {})]
    assert [p["__typename"] for p in payloads] == [
        "ReplaceFleetSuccess",
        "AddFirmwareSuccess",
        "PublishUpgradePathwaySuccess",
        "CorrectUpgradePathwaySuccess",
        "SetFirmwareContactSuccess",
        "WithdrawUpgradePathwaySuccess",
        "DeclarePrerequisiteSuccess",  # by the Manufacturer, for its own firmware
        "DeclarePrerequisiteSuccess",  # by SECAS, on another's behalf
    ]
    premises = next(a for a in answers if "premisesPlan" in a["data"])["data"]["premisesPlan"]
    assert [(s["device"]["id"], s["carriedOutBy"], s["waitsFor"]) for s in premises["steps"]] == [
        ("device:9", "DCC", []),
        ("device:9", "DCC", [1]),
        ("device:11", "SUPPLIER", [2]),
        ("device:10", "SUPPLIER", [2]),
    ]
    scheduled = next(p for p in payloads if p["__typename"] == "WithdrawUpgradePathwaySuccess")[
        "pathway"
    ]
    assert scheduled == {"status": "PUBLISHED", "withdrawalScheduledOn": "2099-01-01"}
    fleet_answer = next(a for a in answers if "fleetPlan" in a["data"])
    assert fleet_answer["data"]["fleetPlan"]["summary"]["meters"] == 125_300
    (stored,) = [a["data"]["myFleet"] for a in answers if "myFleet" in a["data"]]
    assert stored["meters"] == 121_300 and len(stored["groups"]) == 2
    assert stored["plan"]["summary"]["meters"] == 121_300
    # The Supplier's digest: the portal's new latest firmware reroutes its 120,500 meters on
    # 7F000000 (its 800 on device:2 untouched), and the sum is the changes' own numbers.
    (digest,) = [a["data"]["fleetDigest"] for a in answers if "fleetDigest" in a["data"]]
    assert digest["changes"] and {c["device"]["id"] for c in digest["changes"]} == {"device:1"}
    impacts = [c["fleetImpact"] for c in digest["changes"]]
    assert digest["impact"] == {key: sum(i[key] for i in impacts) for key in impacts[0]}


async def test_the_readme_graphql_examples_answer_and_its_webhook_check_verifies(server):
    running, env, _ = server
    closed = f"http://127.0.0.1:{free_port()}/cpl"  # loopback, nothing listening
    token = await cli(env, "token", "SSC")  # every block is one the SSC may run
    graphql = blocks("graphql")
    assert graphql
    async with httpx.AsyncClient() as client:
        for document in graphql:
            response = await client.post(
                running.base + "/graphql",
                json={"query": document.replace("https://back-office.example/cpl", closed)},
                headers={"Authorization": f"Bearer {token}"},
            )
            answer = response.json()
            assert "errors" not in answer and answer["data"], (document, answer)
            if "registerWebhook" in answer["data"]:
                registered = answer["data"]["registerWebhook"]
                assert registered["webhook"]["url"] == closed and registered["secret"]

    verifier = next(b for b in blocks("python") if "def verify(" in b)
    namespace: dict = {}
    exec(verifier, namespace)  # noqa: S102  (the README's own code)
    body, now = b'{"eventId":"event:1"}', int(time.time())
    mac = hmac.new(b"s3cret", f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert namespace["verify"]("s3cret", body, f"t={now},v1={mac}")
    assert not namespace["verify"]("s3cret", body + b" ", f"t={now},v1={mac}")
    assert not namespace["verify"]("s3cret", body, f"t={now - 3600},v1={mac}")


def test_the_readme_webhook_checks_verify_what_the_dispatcher_signs():
    """Both of the README's receivers, by hand and with the Standard Webhooks library, accept
    the headers a delivery carries, and refuse a changed body."""
    namespace: dict = {}
    for marker in ("def verify(", "def verify_standard("):
        exec(next(b for b in blocks("python") if marker in b), namespace)  # noqa: S102
    secret, body = new_secret(), b'{"eventId":"event:1","reason":"caf\xc3\xa9"}'
    headers = signature_headers(secret, body, int(time.time()), message_id(1, 1))
    assert namespace["verify"](secret, body, headers["X-CPL-Signature"])
    assert namespace["verify_standard"](secret, body, headers) == json.loads(body)
    assert not namespace["verify"](secret, body + b" ", headers["X-CPL-Signature"])
    assert namespace["verify_standard"](secret, body + b" ", headers) is None


async def test_the_readme_subscriber_prints_a_change_as_it_commits(server):
    running, env, _ = server
    follower = next(b for b in blocks("python") if "async def follow(" in b)
    assert "asyncio.run(follow(sys.argv[1]))" in follower
    namespace: dict = {"__name__": "readme"}
    exec(localised(follower, running.base), namespace)  # noqa: S102  (the README's own code)
    supplier = await cli(env, "token", "SMALL_SUPPLIER")
    secas = await cli(env, "token", "SECAS")
    printed = io.StringIO()

    async def add(n: int) -> None:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                running.base + "/graphql",
                json={"query": ADD_FIRMWARE, "variables": {"v": f"5A0004{n:02X}"}},
                headers={"Authorization": f"Bearer {secas}"},
            )
        assert response.json()["data"]["addFirmware"]["__typename"] == "AddFirmwareSuccess"

    with contextlib.redirect_stdout(printed):
        task = asyncio.create_task(namespace["follow"](supplier))
        # The server (another process) sends a change to the subscription once it has set it
        # up, of which nothing tells: firmware is added, a little longer apart each time,
        # until the follower prints one.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        for n in range(1, 256):
            await add(n)
            with contextlib.suppress(AssertionError):
                await eventually(printed.getvalue, "a printed change", within=0.25 * n)
                break
            assert loop.time() < deadline and not task.done(), "the follower printed nothing"
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert "'kind': 'FIRMWARE_ADDED'" in printed.getvalue()
    assert "'device': {'id': 'device:1'}" in printed.getvalue()
