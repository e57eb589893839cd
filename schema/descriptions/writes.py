"""Descriptions of the Manufacturer portals' mutations: each mutation, its input, its answer
(the success and payload types `schema.mutations` makes from its spec) and the errors every
mutation shares (keys: `schema.descriptions`)."""

from __future__ import annotations

from resolvers.writes.validation import MAX_IDEMPOTENCY_KEY, MAX_NOTES, MAX_REASON
from schema.mutations import MUTATIONS

HEX4 = "4 hex digits, any case (stored upper case)"
VERSION = "8 hex digits, any case (stored upper case)"
SSC_READS_BACK = "Only the SSC reads it back; you may set it for your own devices."
IDEMPOTENCY_KEY = (
    f"Your key for this change (at most {MAX_IDEMPOTENCY_KEY} characters): sent again by you "
    "with the same input, the first result is answered and nothing is written twice; with "
    "another input, CONFLICT."
)
NOTES = f"How to carry the upgrade out (at most {MAX_NOTES:,} characters)."
REASON = f"Why (at most {MAX_REASON:,} characters): kept in the history."

MUTATION_FIELDS = {
    "Mutation": "What may be changed: the CPL (Manufacturers on their own devices, SECAS on "
    "any) and your own webhooks.",
    "Mutation.addDevice": "Add a device (a model at one hardware version) to the CPL, under "
    "your own manufacturer's identifier.",
    "Mutation.addFirmware": "Add a firmware version to a device, ACTIVE.",
    "Mutation.publishUpgradePathway": "Publish a one-step upgrade between two firmware versions "
    "of a device. It must end on ACTIVE firmware, not repeat a PUBLISHED pathway, and not "
    "close a cycle.",
    "Mutation.correctUpgradePathway": "Correct a PUBLISHED pathway's notes or firmware, at the "
    "revision you read; its revision goes up by one.",
    "Mutation.withdrawUpgradePathway": "Withdraw a pathway, with a reason: no plan uses it again.",
    "Mutation.withdrawFirmware": "Withdraw firmware from the CPL, with a reason: meters may "
    "still run it, and nothing is upgraded to it. Its pathways stay as they are.",
    "Mutation.setZigbeeInformation": "Set a device's Zigbee band, stack version or chipset "
    "vendor: those given, the others left as they are.",
    "MutationError": "Why a mutation changed nothing; `field` names the input.",
    "MutationError.code": "VALIDATION, NOT_FOUND or CONFLICT, as the type says.",
    "MutationError.message": "What was wrong, for a person to read.",
    "MutationError.field": "The input field at fault; null when it is the input as a whole.",
    "ValidationError": "An input broke a rule of the CPL (a malformed identifier, a missing "
    "reason, a pathway that would close a cycle): nothing changed.",
    "NotFoundError": "An id or identifier named nothing that is yours to change: nothing changed.",
    "ConflictError": "The CPL has moved on (a stale `expectedRevision`, a duplicate, an "
    "idempotency key used for another input): nothing changed.",
}

INPUTS = {
    "AddDeviceInput": "The device to add.",
    "AddDeviceInput.manufacturerIdentifier": f"Its manufacturer's identifier, {HEX4}: a "
    "Manufacturer's own.",
    "AddDeviceInput.modelIdentifier": f"Its Model Identifier, {HEX4}.",
    "AddDeviceInput.modelName": "The model's name.",
    "AddDeviceInput.hardwareVersion": f"Its Hardware Version, {HEX4}; a device is unique by "
    "manufacturer, model and hardware version.",
    "AddDeviceInput.deviceType": "What kind of device it is.",
    "AddDeviceInput.zigbeeBand": "The band of its Zigbee radio, if known.",
    "AddDeviceInput.zigbeeStackVersion": f"Its Zigbee stack version, if known. {SSC_READS_BACK}",
    "AddDeviceInput.zigbeeChipsetVendor": f"Its Zigbee chipset vendor, if known. {SSC_READS_BACK}",
    "AddFirmwareInput": "The firmware to add.",
    "AddFirmwareInput.deviceId": "The device it is for: `device:<number>`.",
    "AddFirmwareInput.version": f"Its Firmware Version, {VERSION}; new for the device.",
    "AddFirmwareInput.imageHash": "The SHA-256 of its image, 64 hex digits, any case.",
    "AddFirmwareInput.addedToCplOn": "The day it joins the CPL; today (UTC) when not given.",
    "PublishUpgradePathwayInput": "The pathway to publish.",
    "PublishUpgradePathwayInput.deviceId": "The device: `device:<number>`.",
    "PublishUpgradePathwayInput.fromVersion": f"The firmware meters leave, {VERSION}.",
    "PublishUpgradePathwayInput.toVersion": f"The firmware meters reach, {VERSION}: ACTIVE.",
    "PublishUpgradePathwayInput.notes": NOTES,
    "CorrectUpgradePathwayInput": "The correction: new notes, a new `fromVersion` or "
    "`toVersion`, or several; at least one.",
    "CorrectUpgradePathwayInput.pathwayId": "The pathway: `pathway:<number>`.",
    "CorrectUpgradePathwayInput.expectedRevision": "The revision you read; if the pathway has "
    "changed since, CONFLICT and nothing is written.",
    "CorrectUpgradePathwayInput.reason": REASON,
    "CorrectUpgradePathwayInput.notes": f"{NOTES} Null leaves them as they are.",
    "CorrectUpgradePathwayInput.fromVersion": f"The firmware meters leave, {VERSION}; null "
    "leaves it.",
    "CorrectUpgradePathwayInput.toVersion": f"The firmware meters reach, {VERSION}; null leaves "
    "it.",
    "WithdrawUpgradePathwayInput": "The pathway to withdraw.",
    "WithdrawUpgradePathwayInput.pathwayId": "The pathway: `pathway:<number>`.",
    "WithdrawUpgradePathwayInput.reason": REASON,
    "WithdrawFirmwareInput": "The firmware to withdraw.",
    "WithdrawFirmwareInput.firmwareId": "The firmware: `firmware:<number>`.",
    "WithdrawFirmwareInput.reason": REASON,
    "SetZigbeeInformationInput": "The Zigbee details to set; give at least one.",
    "SetZigbeeInformationInput.deviceId": "The device: `device:<number>`.",
    "SetZigbeeInformationInput.zigbeeBand": "The band of its Zigbee radio; null leaves it.",
    "SetZigbeeInformationInput.zigbeeStackVersion": "Its Zigbee stack version; null leaves it. "
    f"{SSC_READS_BACK}",
    "SetZigbeeInformationInput.zigbeeChipsetVendor": "Its Zigbee chipset vendor; null leaves "
    f"it. {SSC_READS_BACK}",
    "SetZigbeeInformationInput.reason": REASON,
}


def _answers() -> dict[str, str]:
    """Each mutation's argument and the types made from its spec: the same words for each."""
    found: dict[str, str] = {}
    for spec in MUTATIONS:
        title = spec.name[0].upper() + spec.name[1:]
        found |= {
            f"Mutation.{spec.name}(input)": "What to change.",
            f"{spec.input.__name__}.idempotencyKey": IDEMPOTENCY_KEY,
            f"{title}Success": f"`{spec.name}` changed the CPL.",
            f"{title}Success.{spec.kind}": f"The {spec.kind} as it now is, as you may see it.",
            f"{title}Payload": f"What `{spec.name}` answers: {title}Success, or an error saying "
            "why nothing changed.",
        }
    return found


DESCRIPTIONS: dict[str, str] = {**MUTATION_FIELDS, **INPUTS, **_answers()}
