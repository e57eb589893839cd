"""The read benchmark's peer: PostGraphile 4 (``bench/postgraphile/``, npm, pinned in its lock
file) over the same PostgreSQL database as the API, asked the equivalent of the typical
Supplier query, its answers checked equal to the API's before anything is timed.

What ``bench.read`` calls (``peer_missing()`` first: why the peer cannot run here, or None):

- ``peer_processes(database_url, ports, log_dir, jwt)``: one ``node server.js`` a port, ready
  when entered (the schema introspected), terminated after. It first creates the one thing
  PostGraphile cannot express from the tables, the device's latest ACTIVE firmware, as a
  computed column (``LATEST_FIRMWARE``) in that database: a benchmark database only, never a
  migration.
- ``peer_jwt(settings, directory)``: the API's development public key as PEM, its issuer and
  audience, so that the peer verifies the same ES256 bearer tokens the API does.
- ``PEER_QUERY`` with ``$first`` and ``$offset`` (defaults 50 and 0: the typical query), and
  ``peer_body(first, offset)``; the API's paged form ``API_QUERY`` with ``api_variables(first,
  offset, device_ids)`` (the same page by ``after`` cursor), ``database_device_ids(url)``.
- ``check_equal(api_answer, peer_answer, what)``: raises ``PeerMismatch`` naming the first
  difference between the two decoded bodies, once ``normalise_api`` and ``normalise_peer`` have
  mapped the ids (``device:12`` and PostGraphile's node id both to 12).

``python -m bench.peer --check`` loads the demo CPL and the real-scale synthetic one, checks
answers for a few pages, and runs wrk for a few seconds against the uncached API and the peer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import getpass
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.generate import load_synthetic_cpl
from bench.readme import ROOT
from bench.servers import bench_database, execute_sql, server
from bench.wrk import Run, median_ratio, summary, wrk, wrk_script
from config.settings import Settings
from models.database import create_engine
from permissions.dev_keys import load_or_create_dev_key
from resolvers.reads.paging import row_point
from schema.ids import encode_cursor
from tests.harness import dev_tokens, gql, own_settings, seed_demo_database
from tests.live import eventually, free_port

PEER_DIR = ROOT / "bench" / "postgraphile"
READY_SECONDS = 60.0  # introspection on a busy machine

# PostGraphile's names aliased to the API's, so both answers have one shape. `latestFirmware` is
# the computed column below; the firmware in the API's order (added to the CPL, then id), each
# one's pathways in id order, of any status, as the API lists them to a Supplier.
PEER_QUERY = """query Devices($first: Int = 50, $offset: Int = 0) {
  devices: allDevices(first: $first, offset: $offset, orderBy: PRIMARY_KEY_ASC) {
    totalCount
    nodes {
      id: nodeId modelName zigbeeBand
      manufacturer: manufacturerByManufacturerId { name }
      latestFirmware { version }
      firmware: firmwaresByDeviceIdList(orderBy: [ADDED_TO_CPL_ON_ASC, PRIMARY_KEY_ASC]) {
        version status
        upgradesTo: upgradePathwaysByFromFirmwareIdList(orderBy: PRIMARY_KEY_ASC) {
          to: firmwareByToFirmwareId { version } status
        }
      }
    }
  }
}"""

# The API's typical Supplier query (bench/read.py's PUBLIC) with its page as variables: without
# them, the same document.
API_QUERY = (
    "query Devices($first: Int = 50, $after: String) { devices(first: $first, after: $after) "
    "{ totalCount nodes { id modelName zigbeeBand manufacturer { name } latestFirmware "
    "{ version } firmware { version status upgradesTo { to { version } status } } } } }"
)

# A device's latest firmware as the API means it (resolvers/reads/snapshot.py `_latest`,
# planner.latest_order): the ACTIVE one added to the CPL last, ties to the higher id.
# PostGraphile exposes `device_latest_firmware(device)` as `Device.latestFirmware`.
LATEST_FIRMWARE = """
CREATE OR REPLACE FUNCTION device_latest_firmware(d device) RETURNS firmware
LANGUAGE sql STABLE AS $$
  SELECT f.* FROM firmware f
  WHERE f.device_id = d.id AND f.status = 'ACTIVE'
  ORDER BY f.added_to_cpl_on DESC, f.id DESC
  LIMIT 1
$$"""


@dataclass(frozen=True)
class PeerJwt:
    """What the peer verifies a bearer token against: the API's public key, issuer, audience."""

    public_key_pem: Path
    issuer: str
    audience: str


def peer_jwt(settings: Settings, directory: Path) -> PeerJwt:
    """The development key's public half (the key `settings` trusts and `dev_tokens` signs
    with), written as PEM into `directory`."""
    key = load_or_create_dev_key(settings.dev_key_path)
    pem = directory / "peer-public-key.pem"
    pem.write_bytes(key.as_pem(private=False))
    return PeerJwt(pem, settings.issuer, settings.audience)


@dataclass
class PeerProcess:
    base: str  # http://127.0.0.1:<port>; GraphQL at base + "/graphql"
    process: asyncio.subprocess.Process
    log: Path


def node_url(database_url: str) -> str:
    """The SQLAlchemy URL as node-postgres takes it, with the user asyncpg would take."""
    url = make_url(database_url)
    user = url.username or getpass.getuser()
    password = f":{url.password}" if url.password else ""
    return (
        f"postgres://{user}{password}@{url.host or '127.0.0.1'}:{url.port or 5432}/{url.database}"
    )


def peer_missing() -> str | None:
    """Why the peer cannot run here (no node, PostGraphile not installed), or None: a benchmark
    may skip it with this note rather than fail."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PEER_DIR / "node_modules" / ".installed").exists():
        return "PostGraphile is not installed (make bench/postgraphile/node_modules/.installed)"
    return None


@contextlib.asynccontextmanager
async def peer_processes(
    database_url: str, ports: Sequence[int], log_dir: Path, jwt: PeerJwt | None
) -> AsyncIterator[list[PeerProcess]]:
    """PostGraphile on each of `ports` (127.0.0.1) over `database_url` (PostgreSQL), verifying
    bearer tokens when `jwt` is given (a request without one is refused, 401); each ready when
    entered, SIGTERM and waited for after. Output goes to `log_dir/peer-<port>.log`."""
    if (missing := peer_missing()) is not None:
        raise RuntimeError(f"PostGraphile cannot run: {missing}")
    node = Path(shutil.which("node") or "node")
    await execute_sql(database_url, LATEST_FIRMWARE)
    # NODE_ENV=production as a deployment sets it (graphql-js skips its development checks).
    env = {"PATH": str(node.parent), "NODE_ENV": "production",
           "PEER_DATABASE_URL": node_url(database_url)}  # fmt: skip
    if jwt is not None:
        env |= {"PEER_JWT_PUBLIC_KEY": str(jwt.public_key_pem), "PEER_JWT_ISSUER": jwt.issuer,
                "PEER_JWT_AUDIENCE": jwt.audience}  # fmt: skip
    peers: list[PeerProcess] = []
    try:
        for port in ports:
            log = log_dir / f"peer-{port}.log"
            with log.open("wb") as sink:
                process = await asyncio.create_subprocess_exec(
                    node, "server.js", cwd=PEER_DIR, env=env | {"PEER_PORT": str(port)},
                    stdout=sink, stderr=sink,
                )  # fmt: skip
            peers.append(PeerProcess(f"http://127.0.0.1:{port}", process, log))
        async with httpx.AsyncClient(timeout=READY_SECONDS) as client:
            for peer in peers:
                await eventually(
                    functools.partial(_ready, client, peer),
                    f"PostGraphile ready at {peer.base}", within=READY_SECONDS, every=0.1,
                )  # fmt: skip
        yield peers
    finally:
        for peer in peers:
            if peer.process.returncode is None:
                peer.process.terminate()
        for peer in peers:
            await asyncio.wait_for(peer.process.wait(), 20)


async def _ready(client: httpx.AsyncClient, peer: PeerProcess) -> bool:
    if peer.process.returncode is not None:
        tail = peer.log.read_text()[-2000:]
        raise RuntimeError(f"PostGraphile exited ({peer.process.returncode}): {tail}")
    try:
        return (await client.get(peer.base + "/ready")).status_code == 200
    except httpx.TransportError:
        return False


def peer_variables(first: int, offset: int) -> dict[str, int]:
    return {"first": first, "offset": offset}


def peer_body(first: int, offset: int) -> bytes:
    """The peer's POST body for the page of `first` devices after the first `offset`."""
    return json.dumps({"query": PEER_QUERY, "variables": peer_variables(first, offset)}).encode()


def api_variables(first: int, offset: int, device_ids: Sequence[int]) -> dict[str, Any]:
    """`API_QUERY`'s variables for the same page: after the cursor of the `offset`-th device in
    id order (`device_ids`, ascending), none for the first page."""
    if offset <= 0 or not device_ids:
        return {"first": first, "after": None}
    last = device_ids[min(offset, len(device_ids)) - 1]
    return {"first": first, "after": encode_cursor(row_point(last))}


async def database_device_ids(database_url: str) -> list[int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            found = await connection.execute(text("SELECT id FROM device ORDER BY id"))
            return [row[0] for row in found]
    finally:
        await engine.dispose()


class PeerMismatch(AssertionError):
    """The API and the peer answered a page differently."""


def _devices(answer: dict[str, Any], who: str) -> dict[str, Any]:
    if answer.get("errors") or not isinstance(answer.get("data"), dict):
        raise PeerMismatch(f"{who} answered with errors: {str(answer.get('errors'))[:500]}")
    return answer["data"]["devices"]


def _with_ids(devices: dict[str, Any], pk: Any) -> dict[str, Any]:
    return devices | {"nodes": [node | {"id": pk(node["id"])} for node in devices["nodes"]]}


def _api_pk(global_id: str) -> int:
    kind, _, number = global_id.partition(":")
    if kind != "device":
        raise PeerMismatch(f"the API's device id {global_id!r} is no device's")
    return int(number)


def _peer_pk(node_id: str) -> int:
    kind, number = json.loads(base64.b64decode(node_id))
    if kind != "devices":
        raise PeerMismatch(f"PostGraphile's device id {node_id!r} is no device's")
    return int(number)


def normalise_api(answer: dict[str, Any]) -> dict[str, Any]:
    """The API's decoded body as compared: its `devices`, each id `device:12` as 12."""
    return _with_ids(_devices(answer, "the API"), _api_pk)


def normalise_peer(answer: dict[str, Any]) -> dict[str, Any]:
    """PostGraphile's decoded body as compared: its `devices` (names already the API's, by the
    aliases of PEER_QUERY), each node id (base64 of `["devices", 12]`) as 12."""
    return _with_ids(_devices(answer, "PostGraphile"), _peer_pk)


def first_difference(api: Any, peer: Any, path: str = "devices") -> str | None:
    """Where two JSON values first differ, and how; None when they are equal."""
    if isinstance(api, dict) and isinstance(peer, dict):
        if api.keys() != peer.keys():
            return f"{path}: the API has keys {sorted(api)}, PostGraphile {sorted(peer)}"
        found = (first_difference(api[k], peer[k], f"{path}.{k}") for k in api)
        return next((one for one in found if one), None)
    if isinstance(api, list) and isinstance(peer, list):
        if len(api) != len(peer):
            return f"{path}: the API lists {len(api)}, PostGraphile {len(peer)}"
        found = (first_difference(a, p, f"{path}[{i}]") for i, (a, p) in enumerate(zip(api, peer)))  # noqa: B905 - equal lengths
        return next((one for one in found if one), None)
    return None if api == peer else f"{path}: the API says {api!r}, PostGraphile {peer!r}"


def check_equal(api_answer: dict[str, Any], peer_answer: dict[str, Any], what: str) -> None:
    """Raise `PeerMismatch` naming the first difference of the two decoded bodies."""
    difference = first_difference(normalise_api(api_answer), normalise_peer(peer_answer))
    if difference is not None:
        raise PeerMismatch(f"{what}: {difference}")


def check_pages(count: int) -> list[tuple[int, int]]:
    """(first, offset) pairs that cover the start, the middle, the end, past it and `first: 0`."""
    return [(50, 0), (1, 0), (7, 3), (0, 2), (20, max(0, count - 5)), (10, count), (50, count // 2)]


async def check_same_answers(
    api_base: str, peer_base: str, token: str, device_ids: Sequence[int]
) -> int:
    """Every page of `check_pages` asked of both and compared; the number of pages checked."""
    pages = check_pages(len(device_ids))
    async with (
        httpx.AsyncClient(base_url=api_base, timeout=60) as api,
        httpx.AsyncClient(base_url=peer_base, timeout=60) as peer,
    ):
        for first, offset in pages:
            ours = await gql(api, token, API_QUERY, api_variables(first, offset, device_ids))
            theirs = await peer.post(
                "/graphql", content=peer_body(first, offset),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )  # fmt: skip
            check_equal(ours, theirs.json(), f"first {first}, offset {offset}")
    return len(pages)


async def check_cpl(cpl: str, args: argparse.Namespace) -> str:
    """One CPL in a fresh PostgreSQL database: the uncached API and one peer process, their
    answers compared page by page, then wrk (8 connections, `--seconds` a run) on the typical
    query, the two taking turns for `--rounds`, the first of each round alternating."""
    with tempfile.TemporaryDirectory(prefix="cpl-peer-") as tmp:
        data_dir = Path(tmp)
        async with bench_database("postgresql", data_dir) as url:
            if cpl == "real":
                await load_synthetic_cpl(url, devices=500)
            else:
                await seed_demo_database(url)
            settings = own_settings(data_dir, url, issuer="cpl-pathways-bench",
                                    environment="development", response_cache_bytes=0)  # fmt: skip
            token = dev_tokens(settings)("SMALL_SUPPLIER", ttl_seconds=3600)
            jwt = None if args.no_jwt else peer_jwt(settings, data_dir)
            async with (
                server(settings, data_dir / "api.log") as api,
                peer_processes(url, [free_port()], data_dir, jwt) as (peer,),
            ):
                pages = await check_same_answers(
                    api.base, peer.base, token, await database_device_ids(url)
                )
                sides = [
                    (f"{api.base}/graphql", wrk_script(data_dir, token, API_QUERY)),
                    (f"{peer.base}/graphql", wrk_script(data_dir, token, PEER_QUERY)),
                ]
                rounds: list[list[list[Run]]] = [[], []]
                for index in range(args.rounds):
                    for side in (0, 1) if index % 2 == 0 else (1, 0):
                        where, script = sides[side]
                        rounds[side].append(wrk([where], script, 8, args.seconds))
    ours, theirs = summary(rounds[0]), summary(rounds[1])
    return (
        f"{cpl} CPL: {pages} pages equal; c8, {args.rounds} x {args.seconds} s: API uncached "
        f"{ours.rps:,.0f} req/s (p99 {ours.p99_ms:.1f} ms, errors {ours.errors}), PostGraphile "
        f"{'not ' if args.no_jwt else ''}verifying tokens {theirs.rps:,.0f} req/s (p99 "
        f"{theirs.p99_ms:.1f} ms, errors {theirs.errors}): "
        f"{median_ratio(rounds[0], rounds[1]):.2f}x (the median of the rounds' ratios)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", required=True,
                        help="compare answers and take a short measure of each")  # fmt: skip
    parser.add_argument("--cpls", default="demo,real")
    parser.add_argument("--seconds", type=int, default=3, help="a wrk run")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each, taking turns")
    parser.add_argument("--no-jwt", action="store_true", help="the peer verifies no token")
    args = parser.parse_args(argv)
    for cpl in args.cpls.split(","):
        print(asyncio.run(check_cpl(cpl, args)), flush=True)


if __name__ == "__main__":
    main()
