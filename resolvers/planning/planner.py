"""Upgrade planner: fewest-step firmware upgrade routes over one device's pathway graph.

Pure and stdlib-only so it can be cached across requests, property-tested without a
database and called tens of thousands of times per request.

Firmware versions are opaque codes: their hex value says nothing about order, so "latest"
is decided by when firmware was added to the CPL, never by comparing versions.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from resolvers.planning.graph_search import fewest_step_routes

__all__ = [
    "BlockReason",
    "FirmwareNode",
    "PathwayEdge",
    "PathwayGraph",
    "Plan",
    "normalise_version",
]


@dataclass(frozen=True, slots=True)
class FirmwareNode:
    """A firmware version of one device; ``id`` doubles as insertion order.

    ``supplied`` is False when the firmware's CPL submission did not say which earlier versions
    can be upgraded to it (MP231's NOT_SUPPLIED): pathways into it may exist unpublished."""

    id: int
    version: str
    active: bool
    added_on: datetime.date
    supplied: bool = True


@dataclass(frozen=True, slots=True)
class PathwayEdge:
    """A one-step upgrade pathway; only published ones can be planned over."""

    id: int
    from_id: int
    to_id: int
    published: bool


class BlockReason(enum.Enum):
    """Why a plan is not reachable, so callers can tell bad input from a missing route."""

    UNKNOWN_FROM_VERSION = "UNKNOWN_FROM_VERSION"
    UNKNOWN_TARGET_VERSION = "UNKNOWN_TARGET_VERSION"
    TARGET_NOT_ACTIVE = "TARGET_NOT_ACTIVE"
    NO_PATHWAY = "NO_PATHWAY"
    PATHWAYS_NOT_SUPPLIED = "PATHWAYS_NOT_SUPPLIED"
    # Only a premises plan says this (`resolvers.planning.premises`): a route exists, but a
    # firmware on every one needs what the premises will not have.
    PREREQUISITE_NOT_MET = "PREREQUISITE_NOT_MET"


@dataclass(frozen=True, slots=True)
class Plan:
    """Result of planning; ``steps`` is empty unless a route of one or more steps exists."""

    start: FirmwareNode | None
    target: FirmwareNode | None
    reachable: bool
    reason: BlockReason | None
    steps: tuple[PathwayEdge, ...]


def normalise_version(version: str) -> str:
    """Canonical lookup key: versions arrive from users in any case and with stray spaces."""
    return version.strip().upper()


def latest_order(added_on: datetime.date, firmware_id: int) -> tuple[datetime.date, int]:
    """What "latest" means: added to the CPL most recently, ties broken by the order added."""
    return (added_on, firmware_id)


class PathwayGraph:
    """One device's firmware and pathways, indexed once, planned many times (immutable after build).

    Routing rules: only published pathways are edges, and every firmware entered after the
    start must be ACTIVE (the start itself may be WITHDRAWN, since meters still run it).
    Pathways whose endpoints are not among the given firmware are ignored.

    Among routes with the fewest steps the one whose sequence of pathway ids is
    lexicographically smallest is chosen. The breadth-first search of
    ``resolvers.planning.graph_search``, given outgoing pathways in ascending id order, finds
    exactly that route, so results are stable no matter in which order rows were loaded.

    A plan with no route is PATHWAYS_NOT_SUPPLIED rather than NO_PATHWAY when the gap may be in
    the data: some ACTIVE firmware other than the start whose predecessors were not supplied
    (pathways into it may exist unpublished) is the target, or has a route to it. Adding every
    missing pathway into such firmware would then give a route; otherwise none could.

    Routes are memoised per start firmware: one BFS yields the route to every target, and a
    device has only tens of firmware, so the cache is naturally bounded. Cache writes are
    single dict assignments of fully built values, so concurrent readers are safe; at worst
    two threads compute the same entry.
    """

    __slots__ = ("_adjacency", "_by_id", "_by_version", "_latest", "_routes", "_unsupplied")

    def __init__(self, firmware: Iterable[FirmwareNode], pathways: Iterable[PathwayEdge]) -> None:
        by_id: dict[int, FirmwareNode] = {}
        by_version: dict[str, FirmwareNode] = {}
        for node in firmware:
            if node.id in by_id:
                raise ValueError(f"duplicate firmware id {node.id}")
            key = normalise_version(node.version)
            if key in by_version:
                raise ValueError(f"duplicate firmware version {key!r}")
            by_id[node.id] = node
            by_version[key] = node

        edge_ids: set[int] = set()
        outgoing: dict[int, list[PathwayEdge]] = {}
        for edge in pathways:
            if edge.id in edge_ids:
                # Ids must be unique or the tie-break between equal-length routes is ambiguous.
                raise ValueError(f"duplicate pathway id {edge.id}")
            edge_ids.add(edge.id)
            if not edge.published or edge.from_id == edge.to_id:
                continue  # self-loops never shorten a route
            if edge.from_id not in by_id:
                continue
            head = by_id.get(edge.to_id)
            if head is None or not head.active:
                continue  # only the start may be withdrawn, and the start is never re-entered
            outgoing.setdefault(edge.from_id, []).append(edge)

        self._by_id = by_id
        self._by_version = by_version
        self._adjacency: dict[int, tuple[PathwayEdge, ...]] = {
            node_id: tuple(sorted(edges, key=lambda e: e.id)) for node_id, edges in outgoing.items()
        }
        self._latest = max(
            (node for node in by_id.values() if node.active),
            key=lambda node: latest_order(node.added_on, node.id),
            default=None,
        )
        self._routes: dict[int, dict[int, tuple[PathwayEdge, ...]]] = {}
        self._unsupplied = tuple(
            sorted(node.id for node in by_id.values() if node.active and not node.supplied)
        )

    def latest(self) -> FirmwareNode | None:
        """The ACTIVE firmware most recently added to the CPL (by date, then id), if any."""
        return self._latest

    def nodes(self) -> tuple[FirmwareNode, ...]:
        """Every firmware of the device, in the order given."""
        return tuple(self._by_id.values())

    def version_of(self, firmware_id: int) -> str:
        """The version of one of this device's firmware, as a plan's steps name it by id."""
        return self._by_id[firmware_id].version

    def by_version(self, version: str) -> FirmwareNode | None:
        """Look a firmware up by version, ignoring case and surrounding whitespace."""
        return self._by_version.get(normalise_version(version))

    def plan(
        self,
        from_version: str,
        to_version: str | None = None,
        *,
        avoiding: frozenset[int] = frozenset(),
    ) -> Plan:
        """Plan the fewest-step upgrade from ``from_version`` to ``to_version`` (default latest).

        Checks run in the order UNKNOWN_FROM_VERSION, UNKNOWN_TARGET_VERSION,
        TARGET_NOT_ACTIVE, then PATHWAYS_NOT_SUPPLIED or NO_PATHWAY. A WITHDRAWN target is
        TARGET_NOT_ACTIVE even when it equals the start, because the plan would otherwise
        recommend withdrawn firmware.
        ``to_version=None`` means "latest"; any string, even blank, is looked up as given.
        A firmware whose id is in ``avoiding`` is never entered (a premises plan's firmware
        whose prerequisites are not met): the target among them is NO_PATHWAY. Such routes are
        searched afresh each time, not memoised.
        """
        start = self.by_version(from_version)
        target = self._latest if to_version is None else self.by_version(to_version)
        if start is None:
            return Plan(start, target, False, BlockReason.UNKNOWN_FROM_VERSION, ())
        if target is None:
            return Plan(start, None, False, BlockReason.UNKNOWN_TARGET_VERSION, ())
        if not target.active:
            return Plan(start, target, False, BlockReason.TARGET_NOT_ACTIVE, ())
        if start.id == target.id:
            return Plan(start, target, True, None, ())
        if avoiding:  # a premises plan's: the reason of a route it cannot take is its own
            steps = fewest_step_routes(start.id, self._avoiding(avoiding)).get(target.id)
            if steps is None:
                return Plan(start, target, False, BlockReason.NO_PATHWAY, ())
            return Plan(start, target, True, None, steps)
        steps = self._routes_from(start.id).get(target.id)
        if steps is None:
            return Plan(start, target, False, self._why_no_route(start.id, target.id), ())
        return Plan(start, target, True, None, steps)

    def _routes_from(self, start_id: int) -> dict[int, tuple[PathwayEdge, ...]]:
        routes = self._routes.get(start_id)
        if routes is None:
            routes = fewest_step_routes(start_id, self._adjacency)
            self._routes[start_id] = routes
        return routes

    def _why_no_route(self, start_id: int, target_id: int) -> BlockReason:
        for node_id in self._unsupplied:
            if node_id != start_id and target_id in self._routes_from(node_id):
                return BlockReason.PATHWAYS_NOT_SUPPLIED
        return BlockReason.NO_PATHWAY

    def _avoiding(self, avoided: frozenset[int]) -> dict[int, tuple[PathwayEdge, ...]]:
        """The adjacency without the edges into `avoided` (each list stays in id order)."""
        return {
            node_id: tuple(edge for edge in edges if edge.to_id not in avoided)
            for node_id, edges in self._adjacency.items()
        }
