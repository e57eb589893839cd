"""Descriptions of upgrade planning, one meter and a fleet (keys: `schema.descriptions`)."""

from __future__ import annotations

from resolvers.planning.fleet_plan import MAX_FLEET_ITEMS

DESCRIPTIONS: dict[str, str] = {
    "Query.upgradePath": "How a meter on `fromVersion` reaches `toVersion` (default: the "
    "device's latest firmware) by PUBLISHED pathways through ACTIVE firmware, in the fewest "
    "steps. An unknown device is null with a NOT_FOUND error.",
    "Query.upgradePath(deviceId)": "The meter's device: `device:<number>`.",
    "Query.upgradePath(fromVersion)": "The firmware version the meter runs now (8 hex digits, "
    "any case); it may be WITHDRAWN.",
    "Query.upgradePath(toVersion)": "The firmware version to reach; null for the device's "
    "latest firmware.",
    "Query.fleetPlan": f"Plans for a fleet: up to {MAX_FLEET_ITEMS:,} items a call, each device "
    "and firmware planned once; items that cannot be planned get a `problem`.",
    "Query.fleetPlan(items)": "The fleet: one item for each group of meters on the same device "
    "and firmware. Send them as variables.",
    "UpgradePlan": "The ordered pathways from the firmware a meter runs to a target.",
    "UpgradePlan.device": "The meter's device.",
    "UpgradePlan.from": "The firmware the meter runs; null when the device has no such version.",
    "UpgradePlan.target": "The firmware to reach: `toVersion`, or else the device's latest "
    "firmware; null when there is none.",
    "UpgradePlan.reachable": "True when the steps reach the target (none: already there).",
    "UpgradePlan.reason": "Why the target cannot be reached; null when it can.",
    "UpgradePlan.steps": "Fewest steps; among equals, the lowest pathway ids. Empty when "
    "unreachable or already there.",
    "PlanBlockReason": "Why a plan does not reach its target: bad input told from a missing route.",
    "PlanBlockReason.UNKNOWN_FROM_VERSION": "The device has no firmware of `fromVersion`.",
    "PlanBlockReason.UNKNOWN_TARGET_VERSION": "The device has no firmware of `toVersion`, or "
    "no latest firmware.",
    "PlanBlockReason.TARGET_NOT_ACTIVE": "The target firmware is WITHDRAWN: nothing is "
    "upgraded to it.",
    "PlanBlockReason.NO_PATHWAY": "No route of PUBLISHED pathways through ACTIVE firmware "
    "leads there.",
    "FleetItemInput": "One group of meters: a device, named by `deviceId` or by "
    "`manufacturerIdentifier`, `modelIdentifier` and `hardwareVersion` (not both), the "
    "firmware its meters run and how many there are.",
    "FleetItemInput.deviceId": "The device: `device:<number>`.",
    "FleetItemInput.manufacturerIdentifier": "Or the device by its identifiers: its "
    "manufacturer's (4 hex digits, any case).",
    "FleetItemInput.modelIdentifier": "Its Model Identifier (4 hex digits, any case).",
    "FleetItemInput.hardwareVersion": "Its Hardware Version (4 hex digits, any case).",
    "FleetItemInput.firmwareVersion": "The firmware version the meters run (8 hex digits, any "
    "case).",
    "FleetItemInput.meterCount": "How many meters: at least 1.",
    "FleetPlan": "A fleet's plans, item by item, and its meters counted.",
    "FleetPlan.entries": "One entry for each item, in the order given.",
    "FleetPlan.summary": "The fleet's meters, counted by what their plans say.",
    "FleetPlanEntry": "One item's plan, or why it has none.",
    "FleetPlanEntry.index": "The item's position in `items`, from 0.",
    "FleetPlanEntry.device": "The device the item named; null when it names none.",
    "FleetPlanEntry.firmwareVersion": "The item's firmware version, upper case.",
    "FleetPlanEntry.meterCount": "The item's meters.",
    "FleetPlanEntry.plan": "The item's plan; null when it has a `problem`.",
    "FleetPlanEntry.problem": "Why this item could not be planned; null when it was.",
    "FleetSummary": "A fleet's meters, counted.",
    "FleetSummary.meters": "Every item's meters together (a count below 1 counts as 0).",
    "FleetSummary.upToDate": "Meters already on their target: reachable in no steps.",
    "FleetSummary.upgradable": "Meters whose target is reachable in one step or more.",
    "FleetSummary.blocked": "Meters of items with a problem or an unreachable target.",
    "FleetSummary.metersByStepCount": "The meters whose target is reachable, by how many "
    "steps they need (0: up to date), fewest first.",
    "StepCount": "How many meters need a given number of steps.",
    "StepCount.steps": "The number of steps.",
    "StepCount.meters": "The meters that need that many.",
}
