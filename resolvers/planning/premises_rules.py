"""The regime's rules for a premises, written once for the premises planner and the write rules.

From SECMP0007's implementation notes (`../shared/domain.md`, "How the real CPL and MP231
work"): Comms Hub firmware (CHF and GPF) is rolled out by the DCC and its communications service
providers, not by a Supplier; PPMIDs and HCALCS can be updated over the air only once the Comms
Hub's firmware has been; IHDs are not updated this way at all.

The PPMID/HCALCS rule is code, not data: it is the regime's, holds for every PPMID and HCALCS
firmware whatever its Manufacturer declares, and names no firmware ("the hub at its latest",
whichever that is when the plan is made). As rows of the prerequisite table it would need one
per firmware and hub model, stale as soon as a hub got newer firmware. It takes part in the
order of device types as declared prerequisites do (`type_order`), so a declaration that would
make a Comms Hub wait for a PPMID is refused as a cycle.

Device types are their names (`"CHF"`), so this module stays pure and stdlib-only, like the
planner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from resolvers.planning.graph_search import fewest_step_routes

__all__ = [
    "AFTER_HUB",
    "CARRIED_OUT_BY_DCC",
    "HUB_RULE",
    "NOT_UPDATABLE_OVER_THE_AIR",
    "RANK",
    "gbcs_key",
    "gbcs_text",
    "type_cycle",
    "type_order",
]

# The order device types are planned in when nothing else decides: the hub first.
RANK: tuple[str, ...] = ("CHF", "GPF", "ESME", "GSME", "PPMID", "HCALCS", "SAPC", "IHD")
CARRIED_OUT_BY_DCC = frozenset({"CHF", "GPF"})
NOT_UPDATABLE_OVER_THE_AIR = frozenset({"IHD"})
AFTER_HUB = frozenset({"PPMID", "HCALCS"})
HUB_RULE = (
    "PPMID and HCALCS firmware is updated over the air only once the Comms Hub's has been "
    "(SECMP0007)"
)

_GBCS = re.compile(r"\s*(?:gbcs\s*)?v?\s*(\d{1,4}(?:\.\d{1,4}){0,3})\s*", re.IGNORECASE)


def gbcs_key(text: str | None) -> tuple[int, ...] | None:
    """A GBCS version as numbers to compare (`v4.0`, `4.0`, `GBCS v3.2` and `4` read alike,
    trailing zeros ignored), or None when it is not one."""
    if text is None:
        return None
    found = _GBCS.fullmatch(text)
    if found is None:
        return None
    parts = [int(part) for part in found.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def gbcs_text(text: str) -> str:
    """A GBCS version as details say it: `GBCS 4.1`, `GBCS v4.0` (not `GBCS GBCS v4.0`)."""
    return text if text.strip().lower().startswith("gbcs") else f"GBCS {text}"


def _edges(declared: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Which types each type waits for: the declared (type of the firmware, type it requires)
    and the PPMID/HCALCS rule's."""
    waits: dict[str, set[str]] = {}
    for dependent, provider in declared:
        waits.setdefault(dependent, set()).add(provider)
    for dependent in AFTER_HUB:
        waits.setdefault(dependent, set()).update(CARRIED_OUT_BY_DCC)
    return waits


def type_order(declared: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Every device type, each after the types it waits for, else in `RANK`'s order. Types in
    a cycle (the write rules refuse one; data from before them may hold one) come last, in
    `RANK`'s order."""
    waits = _edges(declared)
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(RANK):
        ready = [t for t in RANK if t not in placed and not (waits.get(t, set()) - placed - {t})]
        if not ready:
            order += [t for t in RANK if t not in placed]
            break
        order.append(ready[0])
        placed.add(ready[0])
    return tuple(order)


class _Link(NamedTuple):
    """A step of the cycle check: the type (by its place in `RANK`) a type waits for."""

    to_id: int


def type_cycle(
    declared: Iterable[tuple[str, str]], dependent: str, provider: str
) -> Sequence[str] | None:
    """The cycle of device types that `dependent` requiring `provider` would close (as
    `[dependent, provider, ..., dependent]`), or None. By the graph search the planner's own
    routes use, so the same data always names the same cycle."""
    if dependent == provider:
        return [dependent, dependent]
    waits = _edges(declared)
    numbers = {name: n for n, name in enumerate(RANK)}
    links: Mapping[int, list[_Link]] = {
        numbers[t]: [_Link(numbers[p]) for p in sorted(ps, key=numbers.__getitem__)]
        for t, ps in waits.items()
    }
    route = fewest_step_routes(numbers[provider], links).get(numbers[dependent])
    if route is None:
        return None
    return [dependent, provider, *(RANK[link.to_id] for link in route)]
