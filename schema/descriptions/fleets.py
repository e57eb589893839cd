"""Descriptions of a Supplier's stored fleet (keys: `schema.descriptions`)."""

from __future__ import annotations

from resolvers.planning.stored_fleet import MAX_FLEET_GROUPS

DESCRIPTIONS: dict[str, str] = {
    "Query.myFleet": "Your Party's stored fleet; null when it has stored none.",
    "Mutation.replaceFleet": f"Replace your Party's stored fleet whole (at most "
    f"{MAX_FLEET_GROUPS:,} items; items naming the same device and firmware version are summed). "
    "Every item is checked as `fleetPlan` would plan it: one it cannot plan stores nothing.",
    "Mutation.replaceFleet(input)": "The fleet's items and an optional idempotency key.",
    "StoredFleet": "Your fleet as you last stored it (`replaceFleet`, `PUT /fleet`): readable by "
    "your Party only. `plan` is `fleetPlan`'s answer for its groups against the CPL now.",
    "StoredFleet.replacedAt": "When the fleet was last replaced.",
    "StoredFleet.meters": "The meters of every group, summed.",
    "StoredFleet.groups": "By device id, then firmware version.",
    "StoredFleet.plan": "An entry per group, in the groups' order.",
    "FleetGroup": "Meters of your fleet on one device and firmware version.",
    "FleetGroup.device": "The meters' device.",
    "FleetGroup.firmwareVersion": "The firmware version the meters run.",
    "FleetGroup.meterCount": "How many meters of the fleet run it.",
    "ReplaceFleetInput": "A whole fleet, replacing the one stored.",
    "ReplaceFleetInput.items": "One item for each group of meters on the same device and "
    "firmware, as `fleetPlan` takes them.",
    "ReplaceFleetInput.idempotencyKey": "A key of your choosing: a retry with the same key "
    "answers the fleet as it is now and stores nothing again.",
    "ReplaceFleetPayload": "The stored fleet, or why nothing was stored.",
    "ReplaceFleetSuccess": "The fleet was stored.",
    "ReplaceFleetSuccess.fleet": "The fleet as stored.",
    "InvalidFleetError": "Items the planner cannot plan; nothing was stored.",
    "InvalidFleetError.problems": "Each item that cannot be planned, by its position.",
    "FleetItemProblem": "Why one item of `items` cannot be planned.",
    "FleetItemProblem.index": "The item's position in `items`, from 0.",
    "FleetItemProblem.problem": "What is wrong with it, as `fleetPlan` says it.",
}
