"""Descriptions of a Supplier's stored fleet (keys: `schema.descriptions`)."""

from __future__ import annotations

from resolvers.planning.digest import MAX_DIGEST_CHANGES
from resolvers.planning.stored_fleet import MAX_FLEET_GROUPS

DESCRIPTIONS: dict[str, str] = {
    "Query.myFleet": "Your Party's stored fleet; null when it has stored none.",
    "Mutation.replaceFleet": f"Replace your Party's stored fleet whole (at most "
    f"{MAX_FLEET_GROUPS:,} items and premises devices together; items naming the same device "
    "and firmware version are summed, premises of the same shape too). Every item and premises "
    "device is checked as `fleetPlan` would plan it: one it cannot plan stores nothing.",
    "Mutation.replaceFleet(input)": "The fleet's items, its premises shapes and an optional "
    "idempotency key.",
    "StoredFleet": "Your fleet as you last stored it (`replaceFleet`, `PUT /fleet`): readable by "
    "your Party only. `plan` is `fleetPlan`'s answer for its groups against the CPL now.",
    "StoredFleet.replacedAt": "When the fleet was last replaced.",
    "StoredFleet.meters": "The meters of every group, summed (premises' devices are counted in "
    "`plan.summary`, as `fleetPlan` counts them).",
    "StoredFleet.groups": "By device id, then firmware version.",
    "StoredFleet.premises": "Your premises shapes, in the order first given (the same shape "
    "given twice is one, its premises summed).",
    "StoredFleet.plan": "An entry per group, in the groups' order, and a premises entry per "
    "premises shape, in `premises`' order; its summary counts both as `fleetPlan` does.",
    "StoredPremises": "Premises of your fleet that have the same devices on the same firmware.",
    "StoredPremises.premisesCount": "How many premises of the fleet have this shape.",
    "StoredPremises.devices": "The shape's devices, in the order given (a premises plan's "
    "`index` numbers them so).",
    "StoredPremisesDevice": "One device of a premises shape and the firmware it runs.",
    "StoredPremisesDevice.device": "The device.",
    "StoredPremisesDevice.firmwareVersion": "The firmware version it runs.",
    "FleetGroup": "Meters of your fleet on one device and firmware version.",
    "FleetGroup.device": "The meters' device.",
    "FleetGroup.firmwareVersion": "The firmware version the meters run.",
    "FleetGroup.meterCount": "How many meters of the fleet run it.",
    "ReplaceFleetInput": "A whole fleet, replacing the one stored.",
    "ReplaceFleetInput.items": "One item for each group of meters on the same device and "
    "firmware, as `fleetPlan` takes them.",
    "ReplaceFleetInput.premises": "Premises shapes with a count of premises each, as "
    "`fleetPlan` takes them; none when omitted.",
    "ReplaceFleetInput.idempotencyKey": "A key of your choosing: a retry with the same key "
    "answers the fleet as it is now and stores nothing again.",
    "ReplaceFleetPayload": "The stored fleet, or why nothing was stored.",
    "ReplaceFleetSuccess": "The fleet was stored.",
    "ReplaceFleetSuccess.fleet": "The fleet as stored.",
    "InvalidFleetError": "Items or premises the planner cannot plan; nothing was stored.",
    "InvalidFleetError.problems": "Each item that cannot be planned, by its position.",
    "InvalidFleetError.premisesProblems": "Each premises shape that cannot be stored, by its "
    "position in `premises`: a device of it the planner cannot plan (`device 2: ...`, from 0), "
    "no device, too many, or a premisesCount below 1.",
    "FleetItemProblem": "Why one item of `items` (or shape of `premises`) cannot be planned.",
    "FleetItemProblem.index": "Its position in `items` (or `premises`), from 0.",
    "FleetItemProblem.problem": "What is wrong with it, as `fleetPlan` says it.",
    "Query.fleetDigest": "The committed changes since a time that touched your Party's stored "
    "fleet (as it was when each change was made), with their impact on it summed: what a "
    "Supplier without a webhook receiver reads instead.",
    "Query.fleetDigest(since)": "Changes at or after this time (without an offset, UTC).",
    "FleetDigest": "The changes since a time that touched your own stored fleet, and what they "
    "did to it: readable by your Party only.",
    "FleetDigest.since": "The time asked for.",
    "FleetDigest.changes": f"The changes with an impact on your fleet, oldest first (by time, "
    f"then event id), at most {MAX_DIGEST_CHANGES:,}: when there are that many, ask again from "
    "the last one's `occurredAt` (the changes of that instant come again; skip them by "
    "`eventId`). Changes that touched none of your fleet are not listed.",
    "FleetDigest.impact": "Each change's `fleetImpact` summed over `changes` (a meter touched "
    "by two changes counts twice); null when there are none.",
}
