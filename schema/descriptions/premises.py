"""Descriptions of prerequisites and premises plans (keys: `schema.descriptions`). The
mutations' answers (`Mutation.<name>(input)`, `idempotencyKey`, the Success and Payload types)
are made from their specs by `schema.descriptions.writes`."""

from __future__ import annotations

from resolvers.planning.premises_plan import MAX_PREMISES_DEVICES
from resolvers.writes.prerequisites import MAX_GBCS_TEXT, MAX_REQUIRED_FIRMWARE
from resolvers.writes.validation import MAX_REASON

GBCS = (
    f"a GBCS version (at most {MAX_GBCS_TEXT} characters; `v4.0`, `4.0` and `GBCS v4.0` read "
    "alike), met by firmware implementing it or a later one"
)

PREREQUISITES: dict[str, str] = {
    "Firmware.prerequisites": "What this firmware needs at the same premises before a device "
    "steps onto it, in any status; only PUBLISHED ones count in plans.",
    "CplChange.prerequisite": "The prerequisite declared or withdrawn; null when the change was "
    "not to a prerequisite.",
    "ChangeKind.PREREQUISITE_DECLARED": "A firmware's prerequisite was declared.",
    "ChangeKind.PREREQUISITE_WITHDRAWN": "A firmware's prerequisite was withdrawn.",
    "Prerequisite": "What a firmware needs at the same premises: another device of "
    "`requiresDeviceType` running one of `requiresAnyOfFirmware`, or firmware implementing "
    "`requiresGbcsVersion` or later. Declared by the firmware's own Manufacturer, or SECAS.",
    "Prerequisite.id": "The prerequisite's id: `prerequisite:<number>`.",
    "Prerequisite.firmware": "The firmware that needs it.",
    "Prerequisite.requiresDeviceType": "The type of the other device of the premises.",
    "Prerequisite.requiresAnyOfFirmware": "Met by that device running any of these; empty when "
    "the prerequisite names a GBCS version instead.",
    "Prerequisite.requiresGbcsVersion": f"Met by that device's firmware implementing {GBCS}; "
    "null when it names firmware instead.",
    "Prerequisite.status": "PUBLISHED (plans keep it) or WITHDRAWN.",
    "Prerequisite.declaredAt": "When it was declared.",
    "Prerequisite.declaredBy": "The Party id that declared it.",
    "Prerequisite.history": "Its declaration and withdrawal, oldest first.",
    "Mutation.declarePrerequisite": "Declare what one of your own firmware needs at the same "
    "premises (SECAS: anyone's): another device type running one of a set of firmware, or a "
    "GBCS version. Prerequisites between device types never form a cycle.",
    "Mutation.withdrawPrerequisite": "Withdraw a prerequisite, with a reason: no plan keeps it "
    "again.",
    "DeclarePrerequisiteInput": "A prerequisite: give `requiresAnyOfFirmware` or "
    "`requiresGbcsVersion`, exactly one.",
    "DeclarePrerequisiteInput.firmwareId": "Your firmware that needs it: `firmware:<number>`, "
    "ACTIVE.",
    "DeclarePrerequisiteInput.requiresDeviceType": "The other device's type: not the "
    "firmware's own.",
    "DeclarePrerequisiteInput.requiresAnyOfFirmware": f"Firmware of that type, any "
    f"Manufacturer's (at most {MAX_REQUIRED_FIRMWARE}): met by a device running any of them.",
    "DeclarePrerequisiteInput.requiresGbcsVersion": f"Or {GBCS}.",
    "WithdrawPrerequisiteInput": "The prerequisite to withdraw.",
    "WithdrawPrerequisiteInput.prerequisiteId": "The prerequisite: `prerequisite:<number>`.",
    "WithdrawPrerequisiteInput.reason": f"Why (at most {MAX_REASON:,} characters): kept in the "
    "history.",
}

PREMISES: dict[str, str] = {
    "Query.premisesPlan": "An ordered plan for every device of one premises to its latest "
    "firmware: the Comms Hub's steps (by the DCC) first, each step after the steps it waits for, "
    "every firmware's prerequisites kept; PPMIDs and HCALCS after the hub (SECMP0007). "
    f"At most {MAX_PREMISES_DEVICES} devices.",
    "Query.premisesPlan(devices)": "The devices of the premises and the firmware each runs.",
    "Query.fleetPlan(premises)": "Premises shapes, each with how many premises have it: every "
    "distinct shape planned once, as `premisesPlan` plans it.",
    "PremisesDeviceInput": "A device of the premises, named by `deviceId` or by "
    "`manufacturerIdentifier`, `modelIdentifier` and `hardwareVersion` (not both), and the "
    "firmware it runs.",
    "PremisesDeviceInput.deviceId": "The device: `device:<number>`.",
    "PremisesDeviceInput.manufacturerIdentifier": "The device's manufacturer: 4 hex digits.",
    "PremisesDeviceInput.modelIdentifier": "The device's model: 4 hex digits.",
    "PremisesDeviceInput.hardwareVersion": "The device's hardware version: 4 hex digits.",
    "PremisesDeviceInput.firmwareVersion": "The firmware version it runs: 8 hex digits.",
    "UpgradeActor": "Who carries a step out.",
    "UpgradeActor.SUPPLIER": "The Supplier, by Service Request.",
    "UpgradeActor.DCC": "The DCC and its communications service providers: Comms Hub (CHF and "
    "GPF) firmware.",
    "PremisesPlan": "Steps in order; the devices that cannot reach their latest firmware, and "
    "why; the devices not updated over the air (IHDs), not planned.",
    "PremisesPlan.steps": "In order: a step never waits for a later one.",
    "PremisesPlan.blocked": "By the devices' positions in `devices`.",
    "PremisesPlan.notUpdatableOverTheAir": "IHDs (and any type not updated over the air): "
    "reported, not planned.",
    "PremisesStep": "One over-the-air upgrade of one device of the premises.",
    "PremisesStep.order": "From 1.",
    "PremisesStep.index": "The device's position in `devices`, from 0.",
    "PremisesStep.device": "The device upgraded.",
    "PremisesStep.pathway": "The pathway it takes.",
    "PremisesStep.carriedOutBy": "Who carries it out.",
    "PremisesStep.waitsFor": "The orders of the steps it waits for: its device's previous "
    "step, and the last step of each device whose firmware it needs.",
    "PremisesBlock": "A device that cannot reach its latest firmware (no steps for it), and why.",
    "PremisesBlock.index": "The device's position in `devices`, from 0.",
    "PremisesBlock.device": "The device; null when it is not on the CPL.",
    "PremisesBlock.firmwareVersion": "The firmware it runs, as given (upper case).",
    "PremisesBlock.reason": "Why: the device planner's reason, or PREREQUISITE_NOT_MET.",
    "PremisesBlock.detail": "Which firmware needs what, and why the premises will not have it.",
    "PlanBlockReason.PREREQUISITE_NOT_MET": "Every route to the latest firmware enters firmware "
    "whose prerequisites the premises will not meet (premises plans only).",
    "FleetPremisesInput": "A premises shape: its devices, and how many premises have it.",
    "FleetPremisesInput.devices": f"The devices of each such premises (at most "
    f"{MAX_PREMISES_DEVICES}).",
    "FleetPremisesInput.premisesCount": "How many premises have this shape (at least 1).",
    "FleetPremisesEntry": "The plan of one premises shape of a fleet, or why it has none.",
    "FleetPremisesEntry.index": "The shape's position in `premises`, from 0.",
    "FleetPremisesEntry.premisesCount": "How many premises have it, as given.",
    "FleetPremisesEntry.plan": "Its plan; null when it has a problem.",
    "FleetPremisesEntry.problem": "Why this shape could not be planned.",
    "FleetPlan.premises": "The plan of each premises shape given in `premises`, in order.",
    "FleetSummary.premises": "Premises planned (fleets by premises).",
    "FleetSummary.premisesBlockedByPrerequisites": "Premises with a device blocked by "
    "PREREQUISITE_NOT_MET.",
    "FleetSummary.metersBlockedByPrerequisites": "Meters of premises blocked by "
    "PREREQUISITE_NOT_MET.",
}

DESCRIPTIONS: dict[str, str] = {**PREREQUISITES, **PREMISES}
