"""Descriptions of paging: `PageInfo`, and the connection and edge types of every list that
pages (`schema.types.connection_types` makes them alike, so their words are made alike here)."""

from __future__ import annotations

from schema.query import DEFAULT_PAGE, MAX_PAGE

PAGE_INFO = {
    "PageInfo": "Where a page stands among every page of its list (Relay's cursor connections).",
    "PageInfo.hasNextPage": "True when more items follow this page: ask again with `after`.",
    "PageInfo.hasPreviousPage": "True when items come before this page: ask again with `before`.",
    "PageInfo.startCursor": "The cursor of the page's first item, to pass as `before`; on a page "
    "with no items, the place it was asked at, so that paging on from it neither skips nor "
    "repeats an item. Never null (nullable as Relay's specification has it).",
    "PageInfo.endCursor": "The cursor of the page's last item, to pass as `after`; on a page "
    "with no items, the place it was asked at. Never null (nullable as Relay's specification "
    "has it).",
}

FIRST = (
    f"How many items a page holds: {DEFAULT_PAGE} unless given, at most {MAX_PAGE} (more is "
    "taken as that); a negative number is refused."
)
AFTER = "The `endCursor` of the page before; null for the first page."


def connection(node: str, items: str) -> dict[str, str]:
    """`<node>Connection` and `<node>Edge`: one page of `items` (a plural noun phrase)."""
    return {
        f"{node}Connection": f"One page of {items}.",
        f"{node}Connection.totalCount": f"How many {items} there are on every page together.",
        f"{node}Connection.pageInfo": "Where this page stands, and the cursor to the next.",
        f"{node}Connection.nodes": f"The {items} of this page, in order.",
        f"{node}Connection.edges": f"The {items} of this page with their cursors, in order.",
        f"{node}Edge": f"One of the {items}, with its cursor.",
        f"{node}Edge.cursor": "Opaque: pass it as `after` to read on from this item.",
        f"{node}Edge.node": "The item itself.",
    }


def paged(field: str) -> dict[str, str]:
    """The paging arguments of a root field."""
    return {f"{field}(first)": FIRST, f"{field}(after)": AFTER}


BOTH_WAYS = {
    "(first)": f"At most this many items from the start of the list (after `after`); "
    f"{DEFAULT_PAGE} when neither `first` nor `last` is given; at most {MAX_PAGE}. Not with "
    "`last`; a negative number is refused.",
    "(after)": "Only items after this cursor (an `endCursor` or an edge's `cursor`).",
    "(last)": f"At most this many items from the end of the list (before `before`); at most "
    f"{MAX_PAGE}. Not with `first`; a negative number is refused.",
    "(before)": "Only items before this cursor (a `startCursor` or an edge's `cursor`).",
}


def paged_both_ways(field: str) -> dict[str, str]:
    """The paging arguments of a root field that pages forwards and backwards, as Relay's
    connections do."""
    return {f"{field}{argument}": words for argument, words in BOTH_WAYS.items()}
