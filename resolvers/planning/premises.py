"""Premises planner: every device of one premises to its latest firmware, in an order that keeps
the prerequisites of each firmware it steps onto, the Comms Hub's steps (the DCC's) first.

Pure and stdlib-only, like the device planner it runs once a device (`PathwayGraph`). What it
plans, so that the property tests' brute-force search can say the same from first principles:

- A device is planned to its latest firmware by PUBLISHED pathways through ACTIVE firmware, in
  the fewest steps, or it is blocked (no steps): by the device planner's own reason, or by
  `PREREQUISITE_NOT_MET` when every route to its latest enters a firmware whose prerequisites
  the premises will not meet. Devices not updatable over the air (IHDs) are reported, not
  planned; a device not on the CPL is blocked with no device.
- A prerequisite of a firmware is met by another device of the premises, of the type it names,
  whose firmware **once the plan is done** is one of the firmware it names, or implements at
  least the GBCS version it names. What a device will run is decided before any device that
  relies on it is planned: device types are planned in an order where each comes after the
  types its firmware's prerequisites name (`premises_rules.type_order`: the hub first unless a
  declaration says otherwise), so a device that cannot reach its latest stays on its firmware,
  and the devices relying on it see that.
- A PPMID's or HCALCS's steps (`premises_rules.AFTER_HUB`) need every CHF and GPF of the
  premises at its latest firmware, and a CHF listed (SECMP0007).
- A step waits for its device's previous step, and for the last step of each device whose
  firmware it needs (so the premises it relies on is the one the plan leaves). Steps are
  numbered from 1, device after device in the order they are planned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from resolvers.planning.planner import BlockReason, FirmwareNode, PathwayEdge, PathwayGraph, Plan
from resolvers.planning.premises_rules import (
    AFTER_HUB,
    CARRIED_OUT_BY_DCC,
    HUB_RULE,
    NOT_UPDATABLE_OVER_THE_AIR,
    gbcs_key,
    gbcs_text,
)

__all__ = [
    "Catalogue",
    "PremisesBlock",
    "PremisesDevice",
    "PremisesPlan",
    "PremisesStep",
    "Requirement",
    "plan_premises",
]


@dataclass(frozen=True, slots=True)
class Requirement:
    """A PUBLISHED prerequisite of a firmware: a device of `device_type` running one of
    `firmware_ids`, or firmware implementing at least GBCS `gbcs`; `text` says which."""

    id: int
    device_type: str
    firmware_ids: frozenset[int] | None
    gbcs: tuple[int, ...] | None
    text: str


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What the planner reads of the CPL besides each device's graph: the PUBLISHED
    prerequisites by firmware id (in id order), each firmware's GBCS version as listed, and
    the order device types are planned in (`premises_rules.type_order`)."""

    requirements: Mapping[int, Sequence[Requirement]]
    gbcs: Mapping[int, str | None]
    order: Sequence[str]


@dataclass(frozen=True, slots=True)
class PremisesDevice:
    """One device of the premises, at `index` (0-based) of the caller's list. `graph` and
    `device_type` are None when it names no device of the CPL (`problem` says why); `label`
    names it in details (`CHF 0E3F/1888/0100`)."""

    index: int
    device_id: int | None
    device_type: str | None
    label: str
    graph: PathwayGraph | None
    firmware_version: str
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class PremisesStep:
    order: int
    index: int
    device_id: int
    pathway: PathwayEdge
    carried_out_by: str  # "DCC" or "SUPPLIER"
    waits_for: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PremisesBlock:
    index: int
    device_id: int | None
    firmware_version: str
    reason: BlockReason
    detail: str


@dataclass(frozen=True, slots=True)
class PremisesPlan:
    """Steps in order; blocked devices and those not updatable over the air by index."""

    steps: tuple[PremisesStep, ...]
    blocked: tuple[PremisesBlock, ...]
    not_updatable: tuple[PremisesDevice, ...]


def plan_premises(devices: Sequence[PremisesDevice], catalogue: Catalogue) -> PremisesPlan:
    """The premises' plan (the module's docstring says what it holds)."""
    return _Premises(devices, catalogue).run()


@dataclass
class _Premises:
    devices: Sequence[PremisesDevice]
    catalogue: Catalogue
    finals: dict[int, FirmwareNode | None] = field(default_factory=dict)  # decided, by index
    last: dict[int, int] = field(default_factory=dict)  # index: order of its last step
    fate: dict[int, str] = field(default_factory=dict)  # index: why it stays where it is
    steps: list[PremisesStep] = field(default_factory=list)
    blocked: list[PremisesBlock] = field(default_factory=list)

    def run(self) -> PremisesPlan:
        rank = {name: n for n, name in enumerate(self.catalogue.order)}
        updatable: list[PremisesDevice] = []
        not_updatable: list[PremisesDevice] = []
        for device in self.devices:
            if device.graph is None or device.device_type is None:
                detail = device.problem or "it names no device of the CPL"
                self._block(device, BlockReason.UNKNOWN_FROM_VERSION, detail, None)
            elif device.device_type in NOT_UPDATABLE_OVER_THE_AIR:
                not_updatable.append(device)
                self.finals[device.index] = device.graph.by_version(device.firmware_version)
                self.fate[device.index] = "it is not updated over the air"
            else:
                updatable.append(device)
        for device in sorted(updatable, key=lambda d: (rank.get(d.device_type or "", 99), d.index)):
            self._decide(device)
        blocked = tuple(sorted(self.blocked, key=lambda block: block.index))
        return PremisesPlan(tuple(self.steps), blocked, tuple(not_updatable))

    def _block(
        self, device: PremisesDevice, reason: BlockReason, detail: str, final: FirmwareNode | None
    ) -> None:
        self.blocked.append(
            PremisesBlock(device.index, device.device_id, device.firmware_version, reason, detail)
        )
        self.finals[device.index] = final
        self.fate[device.index] = f"it cannot reach its latest firmware: {reason.value}"

    def _decide(self, device: PremisesDevice) -> None:
        graph = device.graph
        assert graph is not None  # only devices of the CPL are decided
        plan = graph.plan(device.firmware_version)
        if not plan.reachable:
            assert plan.reason is not None  # an unreachable plan says why
            self._block(device, plan.reason, _unreachable(device, plan), plan.start)
            return
        assert plan.start is not None and plan.target is not None  # a reachable plan has both
        if not plan.steps:
            self.finals[device.index] = plan.start
            return
        hub_waits: tuple[int, ...] = ()
        if device.device_type in AFTER_HUB:
            problem, hub_waits = self._hub()
            if problem is not None:
                detail = f"{HUB_RULE}, and {problem}"
                self._block(device, BlockReason.PREREQUISITE_NOT_MET, detail, plan.start)
                return
        unmet, needs = self._prerequisites(device, graph, plan.start)
        route = graph.plan(device.firmware_version, avoiding=frozenset(unmet)) if unmet else plan
        if not route.reachable:
            first = next(step.to_id for step in plan.steps if step.to_id in unmet)
            detail = unmet[first]
            if first != plan.target.id:
                detail = (
                    f"every route to its latest firmware {plan.target.version} enters firmware "
                    f"whose prerequisites are not met; the shortest enters {detail}"
                )
            self._block(device, BlockReason.PREREQUISITE_NOT_MET, detail, plan.start)
            return
        actor = "DCC" if device.device_type in CARRIED_OUT_BY_DCC else "SUPPLIER"
        assert device.device_id is not None  # a device with a graph is on the CPL
        previous: tuple[int, ...] = ()
        for edge in route.steps:
            order = len(self.steps) + 1
            waits = {*previous, *hub_waits, *needs.get(edge.to_id, ())}
            self.steps.append(
                PremisesStep(
                    order, device.index, device.device_id, edge, actor, tuple(sorted(waits))
                )
            )
            previous = (order,)
        self.finals[device.index] = plan.target
        self.last[device.index] = previous[0]

    def _hub(self) -> tuple[str | None, tuple[int, ...]]:
        """Why the Comms Hub is not updated for a PPMID or HCALCS, or the steps to wait for."""
        hubs = [d for d in self.devices if d.device_type in CARRIED_OUT_BY_DCC]
        if not any(d.device_type == "CHF" for d in hubs):
            return "no Comms Hub (CHF) of the CPL is listed at the premises", ()
        waits = []
        for hub in hubs:
            if hub.index not in self.finals:
                return f"the {hub.label} is planned after it (declared prerequisites)", ()
            if hub.index in self.fate:
                return f"the {hub.label} stays on its firmware ({self.fate[hub.index]})", ()
            if hub.index in self.last:
                waits.append(self.last[hub.index])
        return None, tuple(waits)

    def _prerequisites(
        self, device: PremisesDevice, graph: PathwayGraph, start: FirmwareNode
    ) -> tuple[dict[int, str], dict[int, tuple[int, ...]]]:
        """For each firmware of the device but its start: why its prerequisites are not met
        (the first in id order that is not), or the steps to wait for when they are."""
        unmet: dict[int, str] = {}
        needs: dict[int, tuple[int, ...]] = {}
        for node in graph.nodes():
            if node.id == start.id:
                continue
            waits: list[int] = []
            for requirement in self.catalogue.requirements.get(node.id, ()):
                why, wait = self._check(device, requirement)
                if why is not None:
                    unmet[node.id] = f"{node.version}, which requires {requirement.text}: {why}"
                    break
                waits += wait
            else:
                needs[node.id] = tuple(waits)
        return unmet, needs

    def _check(
        self, device: PremisesDevice, requirement: Requirement
    ) -> tuple[str | None, tuple[int, ...]]:
        """(None, the step to wait for) when a device of the premises meets the requirement
        once the plan is done (the one done soonest), else (why not, ())."""
        wanted = requirement.device_type
        providers = [d for d in self.devices if d.device_type == wanted and d is not device]
        if not providers:
            return f"no {wanted} of the CPL is listed at the premises", ()
        meeting: list[PremisesDevice] = []
        why: list[str] = []
        for provider in providers:
            if provider.index not in self.finals:
                why.append(f"the {provider.label} is planned after it (declared prerequisites)")
                continue
            final = self.finals[provider.index]
            if final is None:
                why.append(f"the {provider.label} runs firmware that is not on the CPL")
            elif self._meets(final, requirement):
                meeting.append(provider)
            else:
                why.append(self._will_run(provider, final, requirement))
        if not meeting:
            return "; ".join(why), ()
        best = min(meeting, key=lambda d: (d.index in self.last, self.last.get(d.index, 0)))
        return None, ((self.last[best.index],) if best.index in self.last else ())

    def _meets(self, final: FirmwareNode, requirement: Requirement) -> bool:
        if requirement.firmware_ids is not None:
            return final.id in requirement.firmware_ids
        found = gbcs_key(self.catalogue.gbcs.get(final.id))
        return found is not None and requirement.gbcs is not None and found >= requirement.gbcs

    def _will_run(self, provider: PremisesDevice, final: FirmwareNode, req: Requirement) -> str:
        said = f"the {provider.label} will run {final.version}"
        if req.gbcs is not None:
            listed = self.catalogue.gbcs.get(final.id)
            said += (
                f", which implements {gbcs_text(listed)}" if listed else ", whose GBCS is unknown"
            )
        fate = self.fate.get(provider.index)
        return f"{said} ({fate})" if fate else said


def _unreachable(device: PremisesDevice, plan: Plan) -> str:
    """A blocked device plan's reason in words."""
    if plan.reason is BlockReason.UNKNOWN_FROM_VERSION:
        return f"firmware {device.firmware_version} is not on the CPL for the {device.label}"
    if plan.reason is BlockReason.UNKNOWN_TARGET_VERSION:
        return f"the {device.label} has no ACTIVE firmware on the CPL"
    start = plan.start.version if plan.start is not None else device.firmware_version
    target = plan.target.version if plan.target is not None else "its latest"
    said = f"no route of PUBLISHED pathways leads from {start} to its latest firmware {target}"
    if plan.reason is BlockReason.PATHWAYS_NOT_SUPPLIED:
        said += " yet: its Manufacturer has not said which versions upgrade to some firmware"
    return said
