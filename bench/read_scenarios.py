"""The read benchmark's scenarios, the same for every server that speaks the API's GraphQL.

Three ask one body, over and over: the typical Supplier query of a front-end (`supplier`), the
same with the two SSC-only fields as an SSC analyst (`ssc`) and as a Supplier (`denied`). The
fourth, `distinct`, is the typical document with its page drawn per request, as a paging
front-end sends it (`first` and `after` as variables), so that the response cache is seldom
hit: a seeded table of (first, after) pairs, each once, `after` one of the cursors the API
itself gives its devices (or none: the first page), posted in turn.

The peer (`bench.peer`, PostGraphile) speaks its own GraphQL: it is asked `supplier` as
`PEER_QUERY`, and `distinct` as the same draws, each turned into the (first, offset) page that
holds the same devices (`peer_requests`).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

import httpx

from bench.peer import PEER_QUERY, peer_variables

CONNECTION = (
    "{ totalCount nodes { id modelName zigbeeBand manufacturer { name } "
    "latestFirmware { version } firmware { version status upgradesTo { to { version } status } }"
    "%s } }"
)
TYPICAL = "{ devices(first: 50) " + CONNECTION + " }"
PUBLIC = TYPICAL % ""
WITH_SSC = TYPICAL % " zigbeeStackVersion zigbeeChipsetVendor"
PAGED = (
    "query Page($first: Int!, $after: String) { devices(first: $first, after: $after) "
    + CONNECTION % ""
    + " }"
)
SCENARIOS = {  # name: (category, query): one body each
    "supplier": ("SMALL_SUPPLIER", PUBLIC),
    "ssc": ("SSC", WITH_SSC),
    "denied": ("SMALL_SUPPLIER", WITH_SSC),
}
DISTINCT = "distinct"  # PAGED as a Supplier, a page drawn per request
ALL = (*SCENARIOS, DISTINCT)

# Page sizes from 10 to 50, or further on a CPL with too few devices for MIN_PAIRS pairs (the
# demo's 12 devices give 13 places to start: 10 to 471), never beyond the API's largest page.
SIZES = range(10, 51)
MIN_PAIRS = 6_000
LARGEST_PAGE = 500
TABLE = 8_192  # pairs posted in turn at most (a few MB of wrk's Lua)
SEED = 29
CURSORS = (
    "query Cursors($after: String) { devices(first: 500, after: $after) "
    "{ edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"
)


@dataclass(frozen=True)
class Draw:
    """A page asked for: its size and the API's cursor it starts after (None: the first page),
    with the device id that cursor names, for a server whose cursors are its own."""

    first: int
    after: str | None
    after_id: int | None


@dataclass(frozen=True)
class Requests:
    """What wrk posts to a server for a scenario: the headers, and the bodies in turn."""

    headers: dict[str, str]
    bodies: list[str]


def body(query: str, variables: dict[str, Any] | None = None) -> str:
    return json.dumps({"query": query, **({"variables": variables} if variables else {})})


def paged(draw: Draw) -> str:
    return body(PAGED, {"first": draw.first, "after": draw.after})


async def device_cursors(base: str, token: str) -> list[tuple[int, str]]:
    """Every device's id and the cursor the API gives its edge, in order, page by page."""
    found: list[tuple[int, str]] = []
    after = None
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        while True:
            response = await client.post(
                "/graphql",
                json={"query": CURSORS, "variables": {"after": after}},
                headers={"Authorization": f"Bearer {token}"},
            )
            devices = response.json()["data"]["devices"]
            found += [
                (int(edge["node"]["id"].partition(":")[2]), edge["cursor"])
                for edge in devices["edges"]
            ]
            if not devices["pageInfo"]["hasNextPage"]:
                return found
            after = devices["pageInfo"]["endCursor"]


def distinct_draws(cursors: list[tuple[int, str]]) -> list[Draw]:
    """The table of `distinct`: every (size, place to start) pair once, in a seeded order, the
    first TABLE of them."""
    starts: list[tuple[int | None, str | None]] = [(None, None), *cursors]
    needed = math.ceil(MIN_PAIRS / len(starts))
    last = min(LARGEST_PAGE, max(SIZES[-1], SIZES[0] + needed - 1))
    pairs = [
        Draw(first, cursor, device)
        for device, cursor in starts
        for first in range(SIZES[0], last + 1)
    ]
    random.Random(SEED).shuffle(pairs)
    return pairs[:TABLE]


def edge_draws(cursors: list[tuple[int, str]]) -> list[Draw]:
    """Pages worth checking besides the table's: the first, and the empty one after the last
    device (its total with no rows)."""
    device, cursor = cursors[-1]
    return [Draw(SIZES[0], None, None), Draw(SIZES[0], cursor, device)]


def api_requests(tokens: dict[str, str], draws: list[Draw]) -> dict[str, Requests]:
    """Each scenario's requests to the API, and to the baseline, which answers the same."""

    def bearer(category: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[category]}"}

    requests = {
        name: Requests(bearer(category), [body(query)])
        for name, (category, query) in SCENARIOS.items()
    }
    requests[DISTINCT] = Requests(bearer("SMALL_SUPPLIER"), [paged(draw) for draw in draws])
    return requests


def offsets(cursors: list[tuple[int, str]]) -> dict[int, int]:
    """By device id, how many devices a page after its cursor skips (devices in id order)."""
    return {device: place for place, (device, _) in enumerate(cursors, 1)}


def peer_page(draw: Draw, skipped: dict[int, int]) -> str:
    """The peer's body for the page `draw` asks of the API: as many devices, after as many."""
    offset = 0 if draw.after_id is None else skipped[draw.after_id]
    return body(PEER_QUERY, peer_variables(draw.first, offset))


def peer_requests(
    headers: dict[str, str], skipped: dict[int, int], draws: list[Draw]
) -> dict[str, Requests]:
    """The peer's requests, with the Supplier's `headers` (its bearer token): `supplier` as
    PEER_QUERY's defaults (the typical query's page), `distinct` the API's draws, in order, as
    (first, offset) pages (`skipped`: `offsets`)."""
    return {
        "supplier": Requests(headers, [body(PEER_QUERY)]),
        DISTINCT: Requests(headers, [peer_page(draw, skipped) for draw in draws]),
    }
