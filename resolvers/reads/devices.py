"""Finding devices: the filters of `Query.devices` (`permissions.device_filter`), keyset
pagination and the total count, over the snapshot of the CPL (`resolvers.reads.snapshot`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from permissions.device_filter import DEVICE_FILTER, TextMatch
from resolvers.reads.paging import Page, Window, window_of
from resolvers.reads.snapshot import CplSnapshot


class TextWanted:
    """A free-text value a stored one must match as `TextMatch` says, ignoring case; equal
    to the stored value when it matches (what `_matching_ids` and the search compare)."""

    __slots__ = ("match", "text")

    def __init__(self, text: str, match: TextMatch | None) -> None:
        self.text = text.strip().casefold()
        self.match = match or TextMatch.EXACT_IGNORE_CASE

    def __eq__(self, stored: object) -> bool:
        return isinstance(stored, str) and text_matches(stored, self.text, self.match)

    __hash__ = None  # type: ignore[assignment]  # compared, never a key


def text_matches(stored: str | None, wanted: str, match: TextMatch) -> bool:
    """Whether `stored` holds `wanted` (already stripped and casefolded) as `match` says."""
    if stored is None:
        return False
    value = stored.casefold()
    return value.startswith(wanted) if match is TextMatch.PREFIX else value == wanted


def _wanted(filters: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """The stored values the set filters must equal, by the type of row they are on ("Device" or
    "Manufacturer") and its column; identifiers in any case, free text as `zigbeeMatch` says."""
    wanted: dict[str, dict[str, object]] = {"Device": {}, "Manufacturer": {}}
    match = filters.get("zigbeeMatch")
    for field in DEVICE_FILTER:
        value = filters.get(field.name)
        if value is None or field.column is None:
            continue
        if field.case_free and isinstance(value, str):
            value = value.strip().upper()
        elif field.text_match and isinstance(value, str):
            value = TextWanted(value, match if isinstance(match, TextMatch) else None)
        wanted[field.on][field.column] = value
    return wanted


def _matching_ids(rows: Iterable[Any], wanted: dict[str, object]) -> set[int] | None:
    """The ids of the rows that hold every wanted value; None when nothing is wanted of them."""
    if not wanted:
        return None
    return {row.id for row in rows if all(v == getattr(row, c) for c, v in wanted.items())}


def search_devices(
    snapshot: CplSnapshot, filters: Mapping[str, object], window: Window, first: int
) -> Page[Any]:
    """One page of the search in id order, as `window` asks (`first` rows when it names no
    size); the count covers every page of the search.

    `snapshot` is the caller's view (`CplSnapshot.view`): it holds no value the caller may not
    read, so no filter, order, count or page flag can find one. `filters` are the fields of
    `DeviceFilter` the caller set, by GraphQL name; each must equal the device's value. A
    restricted filter the caller may not use is refused before this
    (`refuse_restricted_input`): matching it against a view without the values would answer
    an empty page, not the FORBIDDEN the caller is owed."""
    wanted = _wanted(filters)
    on_device = wanted["Device"]
    makers = _matching_ids(snapshot.manufacturers.values(), wanted["Manufacturer"])

    def matches(device: Any) -> bool:
        if makers is not None and device.manufacturer_id not in makers:
            return False
        return all(value == getattr(device, name) for name, value in on_device.items())

    matching = snapshot.matching_devices(matches if makers is not None or on_device else None)
    rows, has_previous, has_next = window_of(matching, window, first)

    async def previous() -> bool:
        return has_previous

    return Page(
        rows=rows,
        has_next=has_next,
        count=len(matching),
        has_previous=previous,
        position=window.position(),
    )
