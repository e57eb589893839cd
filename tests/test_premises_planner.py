"""The pure premises planner: examples the issue names, and properties checked against a
brute-force search over the premises' states (every device's firmware at once)."""

from __future__ import annotations

import datetime
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolvers.planning.planner import BlockReason, FirmwareNode, PathwayEdge, PathwayGraph
from resolvers.planning.premises import (
    Catalogue,
    PremisesDevice,
    PremisesPlan,
    Requirement,
    plan_premises,
)
from resolvers.planning.premises_rules import (
    AFTER_HUB,
    CARRIED_OUT_BY_DCC,
    NOT_UPDATABLE_OVER_THE_AIR,
    gbcs_key,
    type_order,
)

PROPERTY_SETTINGS = settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
DAY = datetime.date(2024, 1, 1)
TYPES = ("CHF", "GPF", "ESME", "GSME", "PPMID", "HCALCS", "IHD")
GBCS = (None, "v3.2", "v4.0", "4.1")


@dataclass(frozen=True)
class Model:
    """One device of a premises: its type, firmware and pathways, and what it runs."""

    device_type: str
    firmware: tuple[FirmwareNode, ...]
    pathways: tuple[PathwayEdge, ...]
    start: str  # the version it runs (maybe not on the CPL)


@dataclass(frozen=True)
class Case:
    models: tuple[Model, ...]
    requirements: dict[int, tuple[Requirement, ...]]  # by firmware id, in id order
    gbcs: dict[int, str | None]


def catalogue(case: Case) -> Catalogue:
    firmware_type = {f.id: m.device_type for m in case.models for f in m.firmware}
    declared = [
        (firmware_type[fid], r.device_type) for fid, rs in case.requirements.items() for r in rs
    ]
    return Catalogue(case.requirements, case.gbcs, type_order(declared))


def devices(case: Case) -> list[PremisesDevice]:
    return [
        PremisesDevice(
            index=n,
            device_id=100 + n,
            device_type=m.device_type,
            label=f"{m.device_type} #{n}",
            graph=PathwayGraph(m.firmware, m.pathways),
            firmware_version=m.start,
        )
        for n, m in enumerate(case.models)
    ]


def plan(case: Case) -> PremisesPlan:
    return plan_premises(devices(case), catalogue(case))


# --------------------------------------------------------------------------- the oracle


def latest(model: Model) -> FirmwareNode | None:
    active = [f for f in model.firmware if f.active]
    return max(active, key=lambda f: (f.added_on, f.id)) if active else None


def start_of(model: Model) -> FirmwareNode | None:
    return next((f for f in model.firmware if f.version == model.start), None)


def route_exists(model: Model, start: FirmwareNode, target: FirmwareNode) -> bool:
    active = {f.id for f in model.firmware if f.active}
    seen, todo = {start.id}, [start.id]
    while todo:
        here = todo.pop()
        for edge in model.pathways:
            ahead = edge.from_id == here and edge.published and edge.to_id in active
            if ahead and edge.to_id not in seen:
                seen.add(edge.to_id)
                todo.append(edge.to_id)
    return target.id in seen


def own_reason(model: Model) -> BlockReason | None:
    """What the device planner alone says of a device's plan to its latest."""
    start, target = start_of(model), latest(model)
    if start is None:
        return BlockReason.UNKNOWN_FROM_VERSION
    if target is None:
        return BlockReason.UNKNOWN_TARGET_VERSION
    if not route_exists(model, start, target):
        return BlockReason.NO_PATHWAY
    return None


def meets(case: Case, firmware_id: int | None, requirement: Requirement) -> bool:
    if firmware_id is None:
        return False
    if requirement.firmware_ids is not None:
        return firmware_id in requirement.firmware_ids
    listed = gbcs_key(case.gbcs.get(firmware_id))
    return listed is not None and requirement.gbcs is not None and listed >= requirement.gbcs


def levels(case: Case) -> dict[str, int]:
    """Each type's depth in the waits-for relation of types (acyclic in every case)."""
    firmware_type = {f.id: m.device_type for m in case.models for f in m.firmware}
    waits = {t: {"CHF", "GPF"} if t in AFTER_HUB else set() for t in TYPES}
    for fid, rs in case.requirements.items():
        waits[firmware_type[fid]] |= {r.device_type for r in rs}
    depth: dict[str, int] = {}

    def level(t: str) -> int:
        if t not in depth:
            depth[t] = 1 + max((level(p) for p in waits[t]), default=-1)
        return depth[t]

    return {t: level(t) for t in TYPES}


def settles(case: Case, movers: set[int]) -> int | None:
    """Fewest steps in all that bring every device in `movers` to its latest firmware, the
    others staying where they are, each step allowed by the premises as it stands: a firmware's
    prerequisites met by devices that will not move again, a PPMID's or HCALCS's step only with
    a CHF listed and every CHF and GPF at its latest. None when no order of steps does it."""
    models = case.models
    targets = [latest(m) for m in models]
    state = tuple(f.id if (f := start_of(m)) is not None else None for m in models)

    def settled(j: int, here: tuple) -> bool:
        target = targets[j]
        return j not in movers or (target is not None and here[j] == target.id)

    seen = {state: 0}
    queue = deque([state])
    while queue:
        here = queue.popleft()
        if all(settled(i, here) for i in movers):
            return seen[here]
        for i in movers:
            if settled(i, here):
                continue
            model = models[i]
            active = {f.id for f in model.firmware if f.active}
            if model.device_type in AFTER_HUB:
                hubs = [j for j, m in enumerate(models) if m.device_type in CARRIED_OUT_BY_DCC]
                if not any(models[j].device_type == "CHF" for j in hubs):
                    continue
                if not all(
                    targets[j] is not None and here[j] == targets[j].id  # type: ignore[union-attr]
                    for j in hubs
                ):
                    continue
            for edge in model.pathways:
                if edge.from_id != here[i] or not edge.published or edge.to_id not in active:
                    continue
                if not all(
                    any(
                        j != i
                        and models[j].device_type == r.device_type
                        and settled(j, here)
                        and meets(case, here[j], r)
                        for j in range(len(models))
                    )
                    for r in case.requirements.get(edge.to_id, ())
                ):
                    continue
                after = (*here[:i], edge.to_id, *here[i + 1 :])
                if after not in seen:
                    seen[after] = seen[here] + 1
                    queue.append(after)
    return None


def oracle(case: Case) -> tuple[dict[int, BlockReason], set[int], int]:
    """(blocked devices and why, devices that step, their steps in all): each device in turn,
    the types it relies on first, takes its steps if some order of all the steps lets it."""
    blocked: dict[int, BlockReason] = {}
    movers: set[int] = set()
    total = 0
    depth = levels(case)
    order = sorted(range(len(case.models)), key=lambda i: depth[case.models[i].device_type])
    for i in order:
        model = case.models[i]
        if model.device_type in NOT_UPDATABLE_OVER_THE_AIR:
            continue
        reason = own_reason(model)
        if reason is not None:
            blocked[i] = reason
            continue
        if start_of(model) == latest(model):
            continue
        steps = settles(case, movers | {i})
        if steps is None:
            blocked[i] = BlockReason.PREREQUISITE_NOT_MET
        else:
            movers.add(i)
            total = steps
    return blocked, movers, total


# --------------------------------------------------------------------------- strategies


@st.composite
def cases(draw: st.DrawFn) -> Case:
    count = draw(st.sampled_from([1, 2, 3, 3, 4, 4]))
    models: list[Model] = []
    next_id = 1
    for _ in range(count):
        size = draw(st.integers(1, 4))
        days = sorted(draw(st.lists(st.integers(0, 3), min_size=size, max_size=size)))
        firmware = tuple(
            FirmwareNode(
                next_id + k,
                f"{next_id + k:08X}",
                draw(st.sampled_from([True] * 9 + [False])),
                DAY + datetime.timedelta(days=days[k]),
            )
            for k in range(size)
        )
        ids = [f.id for f in firmware]
        next_id += size
        # Mostly a chain in the order firmware was added (as real devices have), with gaps,
        # withdrawn pathways, shortcuts, loops and pathways back.
        edges = [(a, b, draw(st.sampled_from([1] * 7 + [0]))) for a, b in pairwise(ids)]
        edges += draw(
            st.lists(
                st.tuples(st.sampled_from(ids), st.sampled_from(ids), st.integers(0, 4)),
                max_size=3,
            )
        )
        pathways = tuple(
            PathwayEdge(next_id + k, a, b, published > 0)
            for k, (a, b, published) in enumerate(edges)
        )
        next_id += len(edges)
        start = draw(st.sampled_from([f.version for f in firmware]))
        start = draw(st.sampled_from([firmware[0].version, firmware[0].version, start]))
        if draw(st.sampled_from([False] * 19 + [True])):
            start = "DEADBEEF"  # not on the CPL
        kind = draw(st.sampled_from([*TYPES, "CHF", "ESME"]))
        models.append(Model(kind, firmware, pathways, start))
    gbcs = {f.id: draw(st.sampled_from(GBCS)) for m in models for f in m.firmware}
    requirements: dict[int, tuple[Requirement, ...]] = {}
    waits = {t: {"CHF", "GPF"} if t in AFTER_HUB else set() for t in TYPES}
    rid = 1
    for model in models:
        for node in model.firmware:
            found: list[Requirement] = []
            for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
                present = [m.device_type for m in models if m.device_type != model.device_type]
                others = [t for t in TYPES if t != model.device_type]
                wanted = draw(st.sampled_from(present + present + others))
                if _reaches(waits, wanted, model.device_type):
                    continue  # would close a cycle of types: the write rules refuse it
                waits[model.device_type].add(wanted)
                if draw(st.booleans()):
                    providers = [m for m in models if m.device_type == wanted]
                    pool = sorted(f.id for m in providers for f in m.firmware)
                    newest = [f.id for m in providers if (f := latest(m)) is not None]
                    pool = [*pool, *newest, *newest, 999]  # 999: no firmware of the premises
                    chosen = frozenset(draw(st.lists(st.sampled_from(pool), min_size=1)))
                    found.append(Requirement(rid, wanted, chosen, None, f"{wanted} in {chosen}"))
                else:
                    level = draw(st.sampled_from(GBCS[1:]))
                    found.append(Requirement(rid, wanted, None, gbcs_key(level), f"GBCS {level}"))
                rid += 1
            if found:
                requirements[node.id] = tuple(found)
    return Case(tuple(models), requirements, gbcs)


def _reaches(waits: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        if here == goal:
            return True
        for t in waits[here] - seen:
            seen.add(t)
            todo.append(t)
    return False


# --------------------------------------------------------------------------- properties


def closure(result: PremisesPlan) -> dict[int, set[int]]:
    waits: dict[int, set[int]] = {}
    for step in result.steps:
        found = set(step.waits_for)
        for order in step.waits_for:
            found |= waits[order]
        waits[step.order] = found
    return waits


def check_valid(case: Case, result: PremisesPlan) -> None:
    """Every step takes a PUBLISHED pathway from where its device is to ACTIVE firmware, and
    waits (directly or not) for every step that brings what its firmware needs."""
    models = case.models
    here = [f.id if (f := start_of(m)) is not None else None for m in models]
    steps_of: dict[int, list[int]] = {}
    waits = closure(result)
    for number, step in enumerate(result.steps, start=1):
        assert step.order == number
        assert all(order < step.order for order in step.waits_for)
        model = models[step.index]
        assert step.pathway in model.pathways and step.pathway.published
        assert step.pathway.from_id == here[step.index]
        assert step.carried_out_by == (
            "DCC" if model.device_type in CARRIED_OUT_BY_DCC else "SUPPLIER"
        )
        if steps_of.get(step.index):
            assert steps_of[step.index][-1] in step.waits_for
        here[step.index] = step.pathway.to_id
        steps_of.setdefault(step.index, []).append(step.order)
    for step in result.steps:
        model = models[step.index]
        assert step.pathway.to_id in {f.id for f in model.firmware if f.active}
        if model.device_type in AFTER_HUB:
            hubs = [j for j, m in enumerate(models) if m.device_type in CARRIED_OUT_BY_DCC]
            assert any(models[j].device_type == "CHF" for j in hubs)
            for j in hubs:
                assert here[j] == latest(models[j]).id  # type: ignore[union-attr]
                assert set(steps_of.get(j, [])) <= waits[step.order]
        for requirement in case.requirements.get(step.pathway.to_id, ()):
            assert any(
                j != step.index
                and m.device_type == requirement.device_type
                and meets(case, here[j], requirement)
                and set(steps_of.get(j, [])) <= waits[step.order]
                for j, m in enumerate(models)
            )
    for index in steps_of:
        assert here[index] == latest(models[index]).id  # type: ignore[union-attr]


@PROPERTY_SETTINGS
@given(cases())
def test_premises_plans_agree_with_a_search_over_every_order_of_steps(case: Case) -> None:
    result = plan(case)
    check_valid(case, result)
    blocked, movers, total = oracle(case)
    assert {b.index: b.reason for b in result.blocked} == blocked
    assert {s.index for s in result.steps} == movers
    assert len(result.steps) == total
    assert [d.index for d in result.not_updatable] == [
        i for i, m in enumerate(case.models) if m.device_type in NOT_UPDATABLE_OVER_THE_AIR
    ]
    for block in result.blocked:
        assert block.detail


@PROPERTY_SETTINGS
@given(cases())
def test_the_hubs_steps_come_first_unless_a_hub_firmware_waits_for_another_device(
    case: Case,
) -> None:
    firmware_type = {f.id: m.device_type for m in case.models for f in m.firmware}
    hub_waits = any(
        firmware_type[fid] in CARRIED_OUT_BY_DCC and r.device_type not in CARRIED_OUT_BY_DCC
        for fid, rs in case.requirements.items()
        for r in rs
    )
    actors = [step.carried_out_by for step in plan(case).steps]
    if not hub_waits:
        assert actors == sorted(actors)  # "DCC" < "SUPPLIER"


# --------------------------------------------------------------------------- examples


def chain(first_id: int, versions: Sequence[str]) -> tuple[tuple[FirmwareNode, ...], tuple]:
    firmware = tuple(
        FirmwareNode(first_id + k, v, True, DAY + datetime.timedelta(days=k))
        for k, v in enumerate(versions)
    )
    edges = tuple(
        PathwayEdge(first_id + 100 + k, a.id, b.id, True)
        for k, (a, b) in enumerate(pairwise(firmware))
    )
    return firmware, edges


HUB, HUB_EDGES = chain(1, ["C0000001", "C0000002", "C0000003"])
METER, METER_EDGES = chain(11, ["E0000001", "E0000002"])
PPMID, PPMID_EDGES = chain(21, ["D0000001", "D0000002"])
IHD, IHD_EDGES = chain(31, ["A0000001", "A0000002"])


def premises(*models: Model, requirements=None, gbcs=None) -> Case:
    return Case(models, requirements or {}, gbcs or {})


def test_a_meter_whose_latest_needs_newer_hub_firmware_waits_for_the_dccs_steps() -> None:
    needs_hub = Requirement(1, "CHF", frozenset({HUB[2].id}), None, "a CHF on C0000003")
    case = premises(
        Model("ESME", METER, METER_EDGES, "E0000001"),
        Model("CHF", HUB, HUB_EDGES, "C0000001"),
        Model("PPMID", PPMID, PPMID_EDGES, "D0000001"),
        Model("IHD", IHD, IHD_EDGES, "A0000001"),
        requirements={METER[1].id: (needs_hub,)},
    )
    result = plan(case)
    assert [(s.order, s.index, s.carried_out_by, s.waits_for) for s in result.steps] == [
        (1, 1, "DCC", ()),
        (2, 1, "DCC", (1,)),
        (3, 0, "SUPPLIER", (2,)),  # the meter after the hub's last step
        (4, 2, "SUPPLIER", (2,)),  # the PPMID after the hub too (SECMP0007)
    ]
    assert result.blocked == ()
    assert [d.index for d in result.not_updatable] == [3]


def test_a_prerequisite_the_premises_cannot_meet_blocks_the_meter_and_says_why() -> None:
    needs_hub = Requirement(1, "CHF", frozenset({HUB[1].id}), None, "a CHF on C0000002")
    case = premises(
        Model("CHF", HUB, HUB_EDGES, "C0000001"),
        Model("ESME", METER, METER_EDGES, "E0000001"),
        requirements={METER[1].id: (needs_hub,)},
    )
    result = plan(case)
    assert [s.index for s in result.steps] == [0, 0]  # the hub goes on to C0000003
    (block,) = result.blocked
    assert (block.index, block.reason) == (1, BlockReason.PREREQUISITE_NOT_MET)
    assert block.detail == (
        "E0000002, which requires a CHF on C0000002: the CHF #0 will run C0000003"
    )


def test_a_ppmid_without_a_hub_or_with_a_stuck_hub_is_blocked() -> None:
    alone = plan(premises(Model("PPMID", PPMID, PPMID_EDGES, "D0000001")))
    assert alone.blocked[0].reason is BlockReason.PREREQUISITE_NOT_MET
    assert "no Comms Hub (CHF)" in alone.blocked[0].detail
    stuck = plan(
        premises(
            Model("CHF", HUB, HUB_EDGES[:1], "C0000001"),  # no route to C0000003
            Model("PPMID", PPMID, PPMID_EDGES, "D0000001"),
        )
    )
    assert [(b.index, b.reason) for b in stuck.blocked] == [
        (0, BlockReason.NO_PATHWAY),
        (1, BlockReason.PREREQUISITE_NOT_MET),
    ]
    assert "the CHF #0 stays on its firmware" in stuck.blocked[1].detail


def test_a_gbcs_prerequisite_is_met_by_that_version_or_a_later_one() -> None:
    needs_gbcs = Requirement(1, "CHF", None, (4,), "a CHF implementing GBCS v4.0 or later")
    for hub_gbcs, met in (("v3.2", False), ("4.0", True), ("GBCS v4.1", True), (None, False)):
        case = premises(
            Model("CHF", HUB, HUB_EDGES, "C0000003"),
            Model("ESME", METER, METER_EDGES, "E0000001"),
            requirements={METER[1].id: (needs_gbcs,)},
            gbcs={HUB[2].id: hub_gbcs},
        )
        result = plan(case)
        assert bool(result.steps) is met, hub_gbcs
