"""Tests for the pure upgrade planner: properties checked against a brute-force oracle."""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolvers.planning.planner import (
    BlockReason,
    FirmwareNode,
    PathwayEdge,
    PathwayGraph,
    Plan,
)

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
BASE_DAY = datetime.date(2024, 1, 1)
UNKNOWN_VERSION = "DEADBEEF"  # never generated as a real version (see versions strategy)


# --------------------------------------------------------------------------- helpers


def fw(
    fid: int, version: str, *, active: bool = True, day: int = 0, supplied: bool = True
) -> FirmwareNode:
    return FirmwareNode(fid, version, active, BASE_DAY + datetime.timedelta(days=day), supplied)


def pw(eid: int, from_id: int, to_id: int, *, published: bool = True) -> PathwayEdge:
    return PathwayEdge(eid, from_id, to_id, published)


def chain_versions(firmware: list[FirmwareNode], plan: Plan) -> list[str]:
    assert plan.start is not None
    by_id = {node.id: node for node in firmware}
    return [plan.start.version] + [by_id[step.to_id].version for step in plan.steps]


@dataclass(frozen=True)
class Case:
    firmware: list[FirmwareNode]
    pathways: list[PathwayEdge]


def brute_best_route(case: Case, start: FirmwareNode, target: FirmwareNode) -> tuple | None:
    """Enumerate every simple path and pick the fewest steps, then smallest id sequence."""
    nodes = {node.id: node for node in case.firmware}
    best: tuple[int, tuple[int, ...], tuple[PathwayEdge, ...]] | None = None

    def walk(node_id: int, visited: frozenset[int], path: tuple[PathwayEdge, ...]) -> None:
        nonlocal best
        if node_id == target.id and path:
            key = (len(path), tuple(edge.id for edge in path), path)
            if best is None or key[:2] < best[:2]:
                best = key
            return
        for edge in case.pathways:
            if edge.from_id != node_id or not edge.published or edge.to_id in visited:
                continue
            head = nodes.get(edge.to_id)
            if head is None or not head.active:
                continue
            walk(edge.to_id, visited | {edge.to_id}, (*path, edge))

    walk(start.id, frozenset({start.id}), ())
    return None if best is None else best[2]


def brute_gap_in_the_data(case: Case, start: FirmwareNode, target: FirmwareNode) -> bool:
    """Whether a route would exist if every pathway that may be missing were published: one
    from any firmware into each ACTIVE firmware whose predecessors were not supplied."""
    missing = [
        PathwayEdge(1000 + n, source.id, node.id, True)
        for n, (source, node) in enumerate(
            (source, node)
            for source in case.firmware
            for node in case.firmware
            if node.active and not node.supplied and source.id != node.id
        )
    ]
    return (
        brute_best_route(Case(case.firmware, [*case.pathways, *missing]), start, target) is not None
    )


def no_route_reason(case: Case, start: FirmwareNode, target: FirmwareNode) -> BlockReason:
    if brute_gap_in_the_data(case, start, target):
        return BlockReason.PATHWAYS_NOT_SUPPLIED
    return BlockReason.NO_PATHWAY


def brute_latest(firmware: list[FirmwareNode]) -> FirmwareNode | None:
    active = [node for node in firmware if node.active]
    return max(active, key=lambda node: (node.added_on, node.id)) if active else None


def oracle(case: Case, from_version: str, to_version: str | None) -> Plan:
    """Independent, slow restatement of the documented plan() semantics."""
    by_version = {node.version.upper(): node for node in case.firmware}
    start = by_version.get(from_version.strip().upper())
    if to_version is None:
        target = brute_latest(case.firmware)
    else:
        target = by_version.get(to_version.strip().upper())
    if start is None:
        return Plan(None, target, False, BlockReason.UNKNOWN_FROM_VERSION, ())
    if target is None:
        return Plan(start, None, False, BlockReason.UNKNOWN_TARGET_VERSION, ())
    if not target.active:
        return Plan(start, target, False, BlockReason.TARGET_NOT_ACTIVE, ())
    if start == target:
        return Plan(start, target, True, None, ())
    route = brute_best_route(case, start, target)
    if route is None:
        return Plan(start, target, False, no_route_reason(case, start, target), ())
    return Plan(start, target, True, None, route)


# --------------------------------------------------------------------------- strategies

versions = st.text("0123456789ABCDEF", min_size=8, max_size=8).filter(
    lambda v: v != UNKNOWN_VERSION
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Small device graphs: ties in dates, multi-edges, self-loops, cycles, unknown endpoints."""
    count = draw(st.integers(1, 7))
    ids = draw(st.lists(st.integers(1, 50), min_size=count, max_size=count, unique=True))
    vers = draw(st.lists(versions, min_size=count, max_size=count, unique=True))
    firmware = [
        FirmwareNode(
            fid,
            version,
            draw(st.booleans()),
            BASE_DAY + datetime.timedelta(days=draw(st.integers(0, 3))),
            draw(st.booleans() | st.just(True)),  # predecessors supplied, mostly
        )
        for fid, version in zip(ids, vers, strict=True)
    ]
    # In half the graphs some pathways dangle (id 999 is no firmware) and must be ignored.
    endpoint = st.sampled_from(ids)
    if draw(st.booleans()):
        endpoint = endpoint | st.just(999)
    edge_count = draw(st.integers(0, 14))
    edge_ids = draw(
        st.lists(st.integers(1, 100), min_size=edge_count, max_size=edge_count, unique=True)
    )
    pathways = [
        PathwayEdge(eid, draw(endpoint), draw(endpoint), draw(st.booleans() | st.just(True)))
        for eid in edge_ids
    ]
    return Case(firmware, pathways)


@st.composite
def queries(draw: st.DrawFn, case: Case) -> tuple[str, str | None]:
    known = [node.version for node in case.firmware]

    def spelled(version: str) -> str:
        style = draw(st.sampled_from(["upper", "lower", "padded"]))
        return {"upper": version, "lower": version.lower(), "padded": f"  {version.lower()} "}[
            style
        ]

    from_version = spelled(draw(st.sampled_from([*known, UNKNOWN_VERSION])))
    to_version = draw(st.sampled_from([None, *known, UNKNOWN_VERSION]))
    return from_version, None if to_version is None else spelled(to_version)


@st.composite
def case_and_query(draw: st.DrawFn) -> tuple[Case, str, str | None]:
    case = draw(cases())
    return (case, *draw(queries(case)))


# --------------------------------------------------------------------------- properties


@PROPERTY_SETTINGS
@given(case_and_query())
def test_plan_matches_brute_force_oracle(data: tuple[Case, str, str | None]) -> None:
    case, from_version, to_version = data
    graph = PathwayGraph(case.firmware, case.pathways)
    assert graph.plan(from_version, to_version) == oracle(case, from_version, to_version)


@PROPERTY_SETTINGS
@given(cases())
def test_every_pair_route_is_valid_shortest_and_smallest(case: Case) -> None:
    graph = PathwayGraph(case.firmware, case.pathways)
    nodes = {node.id: node for node in case.firmware}
    for start in case.firmware:
        for target in case.firmware:
            plan = graph.plan(start.version, target.version)
            assert plan.start == start and plan.target == target
            assert plan.reachable == (plan.reason is None)
            if not target.active:
                assert plan.reason is BlockReason.TARGET_NOT_ACTIVE
                assert plan.steps == ()
                continue
            if start == target:
                assert plan.reachable and plan.steps == ()
                continue
            expected = brute_best_route(case, start, target)
            if expected is None:
                assert plan.reason is no_route_reason(case, start, target) and plan.steps == ()
                continue
            steps = plan.steps
            assert plan.reachable
            assert steps[0].from_id == start.id and steps[-1].to_id == target.id
            assert all(a.to_id == b.from_id for a, b in pairwise(steps))
            assert all(step.published for step in steps)
            assert all(nodes[step.to_id].active for step in steps)
            assert len(steps) == len(expected)  # nothing shorter exists
            assert [s.id for s in steps] == [e.id for e in expected]  # lexicographic tie-break


@PROPERTY_SETTINGS
@given(cases(), st.randoms(use_true_random=False))
def test_input_order_does_not_change_answers(case: Case, rnd: random.Random) -> None:
    firmware, pathways = list(case.firmware), list(case.pathways)
    rnd.shuffle(firmware)
    rnd.shuffle(pathways)
    first = PathwayGraph(case.firmware, case.pathways)
    second = PathwayGraph(firmware, pathways)
    targets: list[str | None] = [None, UNKNOWN_VERSION, *(node.version for node in firmware)]
    pairs = [(a.version, b) for a in case.firmware for b in targets]
    expected = [(pair, first.plan(*pair)) for pair in pairs]
    rnd.shuffle(expected)  # query order must not matter either (routes are memoised per start)
    for pair, answer in expected:
        assert second.plan(*pair) == answer
        assert first.plan(*pair) == answer  # memoised answer equals the freshly computed one


@PROPERTY_SETTINGS
@given(cases())
def test_latest_is_most_recently_added_active(case: Case) -> None:
    graph = PathwayGraph(case.firmware, case.pathways)
    assert graph.latest() == brute_latest(case.firmware)


# --------------------------------------------------------------------------- examples


def test_latest_ignores_hex_value() -> None:
    graph = PathwayGraph([fw(1, "00000009", day=0), fw(2, "00000002", day=5)], [])
    latest = graph.latest()
    assert latest is not None and latest.version == "00000002"


def test_latest_breaks_date_ties_by_id_and_skips_withdrawn() -> None:
    graph = PathwayGraph(
        [
            fw(7, "0000000A", day=3),
            fw(3, "FFFFFFFF", day=3),
            fw(9, "00000001", day=9, active=False),
        ],
        [],
    )
    latest = graph.latest()
    assert latest is not None and latest.id == 7


def test_latest_none_without_active_firmware() -> None:
    graph = PathwayGraph([fw(1, "00000001", active=False)], [])
    assert graph.latest() is None
    plan = graph.plan("00000001")
    assert plan.reason is BlockReason.UNKNOWN_TARGET_VERSION and plan.target is None


def test_case_insensitive_versions() -> None:
    graph = PathwayGraph([fw(1, "0000ABCD"), fw(2, "0000BEEF", day=1)], [pw(1, 1, 2)])
    assert graph.by_version(" 0000abcd ") == graph.by_version("0000ABCD")
    plan = graph.plan("0000abcd", "0000beef")
    assert plan.reachable and [s.id for s in plan.steps] == [1]
    assert graph.plan("0000aBcD").target == graph.by_version("0000BEEF")


def test_start_equals_target() -> None:
    graph = PathwayGraph([fw(1, "00000001"), fw(2, "00000002", active=False)], [])
    plan = graph.plan("00000001", "00000001")
    assert plan == Plan(plan.start, plan.target, True, None, ())
    assert plan.start is not None and plan.start.id == 1
    # Withdrawn firmware is never a valid target, even when the meter already runs it.
    assert graph.plan("00000002", "00000002").reason is BlockReason.TARGET_NOT_ACTIVE


def test_withdrawn_start_allowed() -> None:
    graph = PathwayGraph(
        [fw(1, "00000001", active=False), fw(2, "00000002", day=1)], [pw(10, 1, 2)]
    )
    plan = graph.plan("00000001")
    assert plan.reachable and [s.id for s in plan.steps] == [10]


def test_withdrawn_middle_firmware_avoided() -> None:
    firmware = [
        fw(1, "00000001"),
        fw(2, "00000002", active=False),
        fw(3, "00000003"),
        fw(4, "00000004", day=2),
    ]
    # Short route via withdrawn 2; longer route via active 3.
    pathways = [pw(1, 1, 2), pw(2, 2, 4), pw(3, 1, 3), pw(4, 3, 2), pw(5, 2, 3), pw(6, 3, 4)]
    graph = PathwayGraph(firmware, pathways)
    plan = graph.plan("00000001", "00000004")
    assert [s.id for s in plan.steps] == [3, 6]
    assert chain_versions(firmware, plan) == ["00000001", "00000003", "00000004"]


def test_withdrawn_target_blocked() -> None:
    graph = PathwayGraph([fw(1, "00000001"), fw(2, "00000002", active=False)], [pw(1, 1, 2)])
    plan = graph.plan("00000001", "00000002")
    assert plan.reason is BlockReason.TARGET_NOT_ACTIVE and not plan.reachable
    assert plan.steps == ()


def test_unpublished_pathways_ignored() -> None:
    graph = PathwayGraph([fw(1, "00000001"), fw(2, "00000002")], [pw(1, 1, 2, published=False)])
    assert graph.plan("00000001", "00000002").reason is BlockReason.NO_PATHWAY


def test_tie_break_prefers_smallest_id_sequence() -> None:
    firmware = [fw(i, f"0000000{i}") for i in range(1, 5)]
    # Two 2-step routes 1->2->4 (ids 5, 1) and 1->3->4 (ids 2, 9): [2, 9] < [5, 1].
    pathways = [pw(5, 1, 2), pw(1, 2, 4), pw(2, 1, 3), pw(9, 3, 4), pw(3, 3, 4)]
    graph = PathwayGraph(reversed(firmware), reversed(pathways))
    assert [s.id for s in graph.plan("00000001", "00000004").steps] == [2, 3]


def test_unknown_versions_and_check_order() -> None:
    graph = PathwayGraph([fw(1, "00000001"), fw(2, "00000002", active=False)], [])
    plan = graph.plan("0BADF00D", "00000002")
    assert plan.reason is BlockReason.UNKNOWN_FROM_VERSION
    assert plan.start is None and plan.target is not None and plan.target.id == 2
    assert graph.plan("00000002", "0BADF00D").reason is BlockReason.UNKNOWN_TARGET_VERSION
    assert graph.plan("0BADF00D", "0BADF00D").target is None


def test_a_gap_in_the_data_is_told_from_a_dead_end() -> None:
    """The latest firmware's submission listed nothing: the route into it may exist unpublished."""
    firmware = [fw(1, "00000001"), fw(2, "00000002", day=1), fw(3, "00000003", day=2)]
    gap = PathwayGraph([*firmware[:2], fw(3, "00000003", day=2, supplied=False)], [pw(1, 1, 2)])
    assert gap.plan("00000001").reason is BlockReason.PATHWAYS_NOT_SUPPLIED
    dead_end = PathwayGraph(firmware, [pw(1, 1, 2)])
    assert dead_end.plan("00000001").reason is BlockReason.NO_PATHWAY
    # A gap on the way: 2 was not supplied, and 2 leads on to the target.
    middle = PathwayGraph(
        [fw(1, "00000001"), fw(2, "00000002", day=1, supplied=False), fw(3, "00000003", day=2)],
        [pw(1, 2, 3)],
    )
    assert middle.plan("00000001").reason is BlockReason.PATHWAYS_NOT_SUPPLIED
    # A gap behind the start, or at withdrawn firmware, is no way forward.
    behind = PathwayGraph(
        [fw(1, "00000001", supplied=False), fw(2, "00000002", day=1, active=False, supplied=False),
         fw(3, "00000003", day=2)],
        [pw(1, 2, 3)],
    )  # fmt: skip
    assert behind.plan("00000001").reason is BlockReason.NO_PATHWAY
    # A route found is a route, whatever was supplied.
    assert gap.plan("00000001", "00000002").reachable


def test_dangling_pathways_ignored() -> None:
    graph = PathwayGraph([fw(1, "00000001"), fw(2, "00000002")], [pw(1, 1, 99), pw(2, 99, 2)])
    assert graph.plan("00000001", "00000002").reason is BlockReason.NO_PATHWAY


@pytest.mark.parametrize(
    ("firmware", "pathways"),
    [
        ([fw(1, "00000001"), fw(1, "00000002")], []),
        ([fw(1, "0000000a"), fw(2, "0000000A")], []),
        ([fw(1, "00000001")], [pw(1, 1, 1), pw(1, 1, 1)]),
    ],
)
def test_duplicate_ids_or_versions_rejected(
    firmware: list[FirmwareNode], pathways: list[PathwayEdge]
) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        PathwayGraph(firmware, pathways)
