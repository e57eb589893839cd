"""Descriptions of paging: `PageInfo`, and the connection and edge types of every list that
pages (`schema.types.connection_types` makes them alike, so their words are made alike here)."""

from __future__ import annotations

from schema.query import DEFAULT_PAGE, MAX_PAGE

PAGE_INFO = {
    "PageInfo": "Where a page stands in its list (Relay's cursor connections).",
    "PageInfo.hasNextPage": "True when more items follow this page: ask again with `after`.",
    "PageInfo.endCursor": "The cursor of this page's last item, to pass as `after`; null when "
    "the page is empty.",
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
