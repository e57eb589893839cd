"""Relay's cursor connections in full (`devices(filter, first, after, last, before)`), checked
against Relay's own algorithm run over the whole list, and what a page with no rows answers.
The demo CPL holds 12 devices, 9 of them made by 0A1B."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

PAGE = """query($first: Int, $after: String, $last: Int, $before: String, $f: DeviceFilter) {
  devices(filter: $f, first: $first, after: $after, last: $last, before: $before) {
    totalCount nodes { id } edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
SUPPLIER = "SMALL_SUPPLIER"


async def page(gql, **arguments: Any) -> dict:
    body = await gql(SUPPLIER, PAGE, arguments)
    assert "errors" not in body, body
    return body["data"]["devices"]


async def every_cursor(gql) -> tuple[list[str], list[str]]:
    """The ids of every device in order, and their edges' cursors."""
    whole = await page(gql, first=500)
    return [e["node"]["id"] for e in whole["edges"]], [e["cursor"] for e in whole["edges"]]


def relay(ids: list[str], cursors: list[str], first, after, last, before) -> dict:
    """Relay's specification, step by step, over the list (cursors of rows only)."""
    edges = list(range(len(ids)))
    if after is not None:
        edges = [i for i in edges if i > cursors.index(after)]
    if before is not None:
        edges = [i for i in edges if i < cursors.index(before)]
    cut = edges
    if first is not None:
        edges = edges[:first]
    if last is not None:
        edges = edges[max(0, len(edges) - last) :] if last else []
    has_next = (
        len(cut) > first
        if first is not None
        else before is not None and (cursors.index(before) < len(ids))
    )
    has_previous = len(cut) > last if last is not None else after is not None
    return {"ids": [ids[i] for i in edges], "next": has_next, "previous": has_previous}


async def test_every_window_is_relays(gql):
    """Every combination of sizes and cursors on a list of 12: the rows and both flags are what
    Relay's algorithm gives (this server answers the flags Relay leaves optional exactly)."""
    ids, cursors = await every_cursor(gql)
    assert len(ids) == 12
    picks = [None, cursors[0], cursors[4], cursors[11]]
    for (first, last), after, before in itertools.product(
        [(None, 3), (None, 0), (None, 20), (2, None), (0, None), (20, None)], picks, picks
    ):
        got = await page(gql, first=first, after=after, last=last, before=before)
        expected = relay(ids, cursors, first, after, last, before)
        where = (first, after, last, before)
        assert [n["id"] for n in got["nodes"]] == expected["ids"], where
        assert got["pageInfo"]["hasNextPage"] == expected["next"], where
        assert got["pageInfo"]["hasPreviousPage"] == expected["previous"], where
        if got["edges"]:
            assert got["pageInfo"]["startCursor"] == got["edges"][0]["cursor"]
            assert got["pageInfo"]["endCursor"] == got["edges"][-1]["cursor"]


@pytest.mark.parametrize("size", [1, 5, 12])
async def test_walking_backwards_sees_every_row_once(gql, size):
    ids, _ = await every_cursor(gql)
    seen: list[str] = []
    before = None
    while True:
        connection = await page(gql, last=size, before=before)
        seen = [n["id"] for n in connection["nodes"]] + seen
        if not connection["pageInfo"]["hasPreviousPage"]:
            break
        before = connection["pageInfo"]["startCursor"]
    assert seen == ids


async def test_first_zero_goes_on_from_where_it_stood(gql):
    """`first: 0` has rows after it (`hasNextPage: true`) and an `endCursor` that names where
    it stood, not null: a client looping on `hasNextPage` with `after: endCursor` goes on from
    there instead of from the top, and no row is skipped or read twice."""
    ids, cursors = await every_cursor(gql)
    start = await page(gql, first=0)
    assert start["nodes"] == [] and start["pageInfo"]["hasNextPage"] is True
    assert start["pageInfo"]["hasPreviousPage"] is False
    assert start["pageInfo"]["endCursor"] and start["pageInfo"]["startCursor"]
    first_rows = await page(gql, first=3, after=start["pageInfo"]["endCursor"])
    assert [n["id"] for n in first_rows["nodes"]] == ids[:3]

    middle = await page(gql, first=0, after=cursors[4])
    assert middle["pageInfo"]["hasNextPage"] is True and middle["pageInfo"]["hasPreviousPage"]
    on = await page(gql, first=2, after=middle["pageInfo"]["endCursor"])
    assert [n["id"] for n in on["nodes"]] == ids[5:7]
    back = await page(gql, last=2, before=middle["pageInfo"]["startCursor"])
    assert [n["id"] for n in back["nodes"]] == ids[3:5]  # the row of `after` included


async def test_a_loop_on_has_next_page_ends_whatever_the_page_size(gql):
    """The client loop of the issue, with sizes 0 and 1 mixed: it reads every row once."""
    ids, _ = await every_cursor(gql)
    seen: list[str] = []
    after = None
    for size in itertools.islice(itertools.cycle([0, 1, 0, 2]), 100):
        connection = await page(gql, first=size, after=after)
        seen += [n["id"] for n in connection["nodes"]]
        after = connection["pageInfo"]["endCursor"]
        assert after is not None
        if not connection["pageInfo"]["hasNextPage"]:
            break
    assert seen == ids


async def test_an_empty_page_past_the_end_and_before_the_start(gql):
    ids, cursors = await every_cursor(gql)
    end = await page(gql, first=5, after=cursors[-1])
    assert end["nodes"] == [] and end["pageInfo"]["hasNextPage"] is False
    assert end["pageInfo"]["hasPreviousPage"] is True
    back = await page(gql, last=2, before=end["pageInfo"]["startCursor"])
    assert [n["id"] for n in back["nodes"]] == ids[-2:]
    start = await page(gql, last=5, before=cursors[0])
    assert start["nodes"] == [] and start["pageInfo"]["hasPreviousPage"] is False
    assert start["pageInfo"]["hasNextPage"] is True
    on = await page(gql, first=2, after=start["pageInfo"]["endCursor"])
    assert [n["id"] for n in on["nodes"]] == ids[:2]
    last_zero = await page(gql, last=0)
    assert last_zero["pageInfo"]["hasPreviousPage"] is True
    tail = await page(gql, last=1, before=last_zero["pageInfo"]["startCursor"])
    assert [n["id"] for n in tail["nodes"]] == ids[-1:]


async def test_filters_page_backwards_within_their_rows(gql):
    ids, _ = await every_cursor(gql)
    maker = {"manufacturerIdentifier": "0A1B"}
    theirs = await page(gql, first=500, f=maker)
    mine = [n["id"] for n in theirs["nodes"]]
    assert theirs["totalCount"] == len(mine) and 0 < len(mine) < len(ids)
    tail = await page(gql, last=2, f=maker)
    assert [n["id"] for n in tail["nodes"]] == mine[-2:]
    assert tail["totalCount"] == len(mine) and tail["pageInfo"]["hasPreviousPage"] is True


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"first": -1}, "`first` must not be negative."),
        ({"last": -1}, "`last` must not be negative."),
        (
            {"first": 2, "last": 2},
            "Give `first` (with `after`) or `last` (with `before`), not both.",
        ),
        ({"last": 2, "before": "device:3"}, "Invalid cursor."),
        ({"last": 2, "before": "Z2FwOnNpeA"}, "Invalid cursor."),  # gap:six
    ],
)
async def test_bad_arguments_are_bad_user_input(gql, arguments, message):
    body = await gql(SUPPLIER, PAGE, arguments)
    assert "data" in body and body["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [
        (message, "BAD_USER_INPUT")
    ]


async def test_last_counts_towards_the_cost_limit_as_first_does(gql, settings):
    """The same document is refused with `first` and `last` alike, and a negative size does
    not buy room for the rest of the document."""
    nested = (
        "nodes { firmware { upgradesTo { to { upgradesTo { history { changes { field } } } } } } }"
    )
    for size in ("first", "last"):
        query = f"query($n: Int) {{ devices({size}: $n) {{ {nested} }} }}"
        assert "errors" not in await gql(SUPPLIER, query, {"n": 5})
        body = await gql(SUPPLIER, query, {"n": 500})
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body
        assert "over the limit" in body["errors"][0]["message"]
    negative = "a: devices(first: -2000000000) { nodes { id } }"
    query = f"{{ {negative} b: devices(first: 500) {{ {nested} }} }}"
    body = await gql(SUPPLIER, query)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body


async def test_audit_events_page_info_is_relays_too(gql):
    """A connection that pages forwards only (newest first) answers the same four fields:
    `hasPreviousPage` once a cursor has passed rows, and an empty page's cursor goes on."""
    query = """query($first: Int, $after: String) { auditEvents(first: $first, after: $after) {
      nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
    whole = (await gql("SECAS", query, {"first": 500}))["data"]["auditEvents"]
    ids = [n["id"] for n in whole["nodes"]]
    assert len(ids) > 3 and whole["pageInfo"]["hasPreviousPage"] is False
    zero = (await gql("SECAS", query, {"first": 0}))["data"]["auditEvents"]
    assert zero["pageInfo"]["hasNextPage"] is True and zero["pageInfo"]["endCursor"]
    one = await gql("SECAS", query, {"first": 2, "after": zero["pageInfo"]["endCursor"]})
    one = one["data"]["auditEvents"]
    assert [n["id"] for n in one["nodes"]] == ids[:2]
    assert one["pageInfo"]["hasPreviousPage"] is False
    two = await gql("SECAS", query, {"first": 0, "after": one["pageInfo"]["endCursor"]})
    two = two["data"]["auditEvents"]
    assert two["pageInfo"]["hasPreviousPage"] is True and two["pageInfo"]["hasNextPage"] is True
    three = await gql("SECAS", query, {"first": 1, "after": two["pageInfo"]["endCursor"]})
    assert [n["id"] for n in three["data"]["auditEvents"]["nodes"]] == ids[2:3]
