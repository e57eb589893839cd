"""Descriptions of the Central Products List as it is read: its types, their enums and scalars,
the root fields that read it, its history and who is asking (keys: `schema.descriptions`)."""

from __future__ import annotations

from schema.descriptions.pages import PAGE_INFO, connection, paged, paged_both_ways

HEX4 = "4 hex digits, shown upper case and matched in any case"
SENSITIVE = "commercially sensitive to Manufacturers (SEC modification MP231)"

TYPES = {
    "Date": "A calendar day, ISO 8601: `2026-03-01`.",
    "DateTime": "An instant in UTC, ISO 8601 with its offset: `2026-03-01T09:30:00+00:00`.",
    "Manufacturer": "A device manufacturer on the CPL.",
    "Manufacturer.id": "Its id: `manufacturer:<number>`.",
    "Manufacturer.name": "The manufacturer's name.",
    "Manufacturer.manufacturerIdentifier": f"Its Manufacturer Identifier: {HEX4}. A "
    "Manufacturer's token names it in its `manufacturer_id` claim.",
    "Manufacturer.devices": "The manufacturer's devices on the CPL.",
    "Device": "A device model at one hardware version, as the Central Products List (CPL) "
    "lists it: who makes it, what it is, its Zigbee radio and the firmware it may run.",
    "Device.id": "Its id: `device:<number>`.",
    "Device.manufacturer": "Who makes the device.",
    "Device.deviceType": "What kind of device it is.",
    "Device.modelIdentifier": f"Its Model Identifier: {HEX4}.",
    "Device.modelName": "The model's name, as its Manufacturer gives it.",
    "Device.hardwareVersion": f"Its Hardware Version: {HEX4}.",
    "Device.zigbeeBand": "The band its Zigbee radio works in; null when not known.",
    "Device.zigbeeStackVersion": f"The version of the Zigbee stack it runs, {SENSITIVE}.",
    "Device.zigbeeChipsetVendor": f"Who makes its Zigbee chipset, {SENSITIVE}.",
    "Device.firmware": "Every firmware version of the device, oldest on the CPL first.",
    "Device.latestFirmware": "The ACTIVE firmware most recently added to the CPL (never the "
    "highest hex value): the planner's default target. Null when none is ACTIVE.",
    "Device.history": "Changes to the device and its firmware and pathways, oldest first.",
    "Firmware": "One firmware version of a device, as the CPL lists it.",
    "Firmware.id": "Its id: `firmware:<number>`.",
    "Firmware.device": "The device it is for.",
    "Firmware.version": "Its Firmware Version: 8 hex digits (4 octets), shown upper case and "
    "matched in any case. An opaque code: its order is not its numeric value.",
    "Firmware.status": "ACTIVE while it is on the CPL; WITHDRAWN once removed.",
    "Firmware.imageHash": "The SHA-256 of the firmware image, 64 hex digits upper case; null "
    "when not given.",
    "Firmware.addedToCplOn": "The day it was added to the CPL: of a device's ACTIVE firmware, "
    "the most recent is its latest.",
    "Firmware.withdrawnOn": "The day it was withdrawn from the CPL; null while ACTIVE.",
    "Firmware.upgradesTo": "Pathways that leave this firmware, in any status.",
    "Firmware.upgradesFrom": "Pathways that arrive at this firmware, in any status.",
    "Firmware.history": "Changes to this firmware, oldest first.",
    "UpgradePathway": "A one-step, over-the-air upgrade of a device from one of its firmware "
    "versions to another.",
    "UpgradePathway.id": "Its id: `pathway:<number>`.",
    "UpgradePathway.device": "The device both firmware versions belong to.",
    "UpgradePathway.from": "The firmware a meter upgrades from.",
    "UpgradePathway.to": "The firmware a meter upgrades to.",
    "UpgradePathway.status": "PUBLISHED while plans may use it; WITHDRAWN once withdrawn.",
    "UpgradePathway.notes": "How to carry the upgrade out, as its Manufacturer wrote it; null "
    "when none.",
    "UpgradePathway.revision": "1 when published, one more at each correction or withdrawal: "
    "send it as `expectedRevision` to correct the pathway.",
    "UpgradePathway.publishedAt": "When it was first published.",
    "UpgradePathway.publishedBy": "The Party id of whoever published it.",
    "UpgradePathway.history": "Changes to this pathway, oldest first.",
}

ENUMS = {
    "DeviceType": "The kinds of smart metering device on the CPL.",
    "DeviceType.ESME": "Electricity Smart Metering Equipment: an electricity meter.",
    "DeviceType.GSME": "Gas Smart Metering Equipment: a gas meter.",
    "DeviceType.CHF": "Communications Hub Function: the premises' link to the DCC.",
    "DeviceType.GPF": "Gas Proxy Function: the Communications Hub's stand-in for the gas meter.",
    "DeviceType.PPMID": "Prepayment Meter Interface Device.",
    "DeviceType.IHD": "In-Home Display.",
    "DeviceType.HCALCS": "HAN-Connected Auxiliary Load Control Switch.",
    "DeviceType.SAPC": "Standalone Auxiliary Proportional Controller.",
    "ZigbeeBand": "The radio bands a device's Zigbee radio may work in.",
    "ZigbeeBand.BAND_2_4_GHZ": "2.4 GHz.",
    "ZigbeeBand.BAND_868_MHZ": "868 MHz (sub-GHz).",
    "ZigbeeBand.DUAL_BAND": "Both 2.4 GHz and 868 MHz.",
    "FirmwareStatus": "Whether firmware is on the CPL.",
    "FirmwareStatus.ACTIVE": "On the CPL: meters may be upgraded to it.",
    "FirmwareStatus.WITHDRAWN": "Removed from the CPL: meters may still run it and leave it by "
    "its pathways, but no plan upgrades a meter to it.",
    "PathwayStatus": "Whether an upgrade pathway may be used.",
    "PathwayStatus.PUBLISHED": "In force: upgrade plans use it.",
    "PathwayStatus.WITHDRAWN": "Withdrawn, with a reason: no plan uses it.",
    "ChangeKind": "What a committed change to the CPL did.",
    "ChangeKind.DEVICE_ADDED": "A device was added.",
    "ChangeKind.FIRMWARE_ADDED": "Firmware was added to a device.",
    "ChangeKind.FIRMWARE_WITHDRAWN": "Firmware was withdrawn from the CPL.",
    "ChangeKind.PATHWAY_PUBLISHED": "An upgrade pathway was published.",
    "ChangeKind.PATHWAY_CORRECTED": "An upgrade pathway's notes or firmware were corrected.",
    "ChangeKind.PATHWAY_WITHDRAWN": "An upgrade pathway was withdrawn.",
    "ChangeKind.ZIGBEE_INFORMATION_CHANGED": "A device's Zigbee band, stack version or chipset "
    "vendor was set.",
    "PartyCategory": "The SEC Party categories: a token's `party_category` claim, which decides "
    "what its bearer may read and do.",
    "PartyCategory.LARGE_SUPPLIER": "A large energy Supplier.",
    "PartyCategory.SMALL_SUPPLIER": "A small energy Supplier.",
    "PartyCategory.NETWORK_PARTY": "A Network Party (an electricity or gas network operator).",
    "PartyCategory.OTHER_SEC_PARTY": "Any other SEC Party.",
    "PartyCategory.MANUFACTURER": "A device Manufacturer: changes its own devices (its token's "
    "`manufacturer_id`).",
    "PartyCategory.SSC": "The SEC Security Sub-Committee: the only reader of the Zigbee stack "
    "version and chipset vendor.",
    "PartyCategory.SECAS": "The SEC Administrator, who runs the CPL: may change any device, "
    "but is not the SSC.",
}

READS = {
    "Query": "What may be read: the CPL, upgrade plans, history, your webhooks and who you are.",
    "Query.viewer": "Who you are, as your credentials say.",
    "Query.manufacturers": "Every manufacturer on the CPL, in id order.",
    "Query.devices": "Devices on the CPL, in id order, a page at a time.",
    "Query.devices(filter)": "Only devices that match every field given; none given: all.",
    **paged_both_ways("Query.devices"),
    "Query.device": "One device; an unknown id is null with a NOT_FOUND error.",
    "Query.device(id)": "A device's id: `device:<number>`.",
    "Query.firmware": "One firmware version; an unknown id is null with a NOT_FOUND error.",
    "Query.firmware(id)": "A firmware's id: `firmware:<number>`.",
    "Query.auditEvents": "The audit log: every committed change, newest first.",
    **paged("Query.auditEvents"),
    "Query.auditEvents(deviceId)": "Only changes to this device, its firmware and pathways.",
    "Query.auditEvents(action)": "Only changes of this kind.",
    "DeviceFilter": "What a device must match in `devices`: each field given must equal the "
    "device's value; null fields match anything.",
    "DeviceFilter.manufacturerIdentifier": f"Its manufacturer's identifier: {HEX4}.",
    "DeviceFilter.deviceType": "Its type.",
    "DeviceFilter.modelIdentifier": f"Its Model Identifier: {HEX4}.",
    "DeviceFilter.hardwareVersion": f"Its Hardware Version: {HEX4}.",
    "DeviceFilter.zigbeeBand": "Its Zigbee band.",
    "DeviceFilter.zigbeeStackVersion": "Its Zigbee stack version, exactly.",
    "DeviceFilter.zigbeeChipsetVendor": "Its Zigbee chipset vendor, exactly.",
    "Viewer": "The caller, as the verified token (or sign-in session) says.",
    "Viewer.partyId": "Your SEC Party id (the token's `party_id`).",
    "Viewer.partyCategory": "Your Party category, which decides what you may read and do.",
    "Viewer.manufacturerIdentifier": "A Manufacturer's own identifier (the token's "
    "`manufacturer_id`); null for every other category.",
    "AuditEvent": "One committed change: who made it, when, why and what it changed.",
    "AuditEvent.id": "Its id: `event:<number>`, as `CplChange.eventId` and webhooks name it.",
    "AuditEvent.occurredAt": "When the change was committed.",
    "AuditEvent.action": "What the change did: a ChangeKind's name.",
    "AuditEvent.actorPartyId": "The Party id of whoever made the change (a CPL file's import: "
    "`import:<file name>`, or the importer's `--actor`).",
    "AuditEvent.actorPartyCategory": "The Party category of whoever made the change.",
    "AuditEvent.reason": "Why; hidden when the event changed a value hidden from you.",
    "AuditEvent.changes": "Each changed field; values the field policy hides from you are "
    "redacted.",
    "FieldChange": "One field a change set: its value before and after.",
    "FieldChange.field": "The field's GraphQL name, on the device, firmware or pathway changed.",
    "FieldChange.before": "The value before the change, as text; null when it had none or is "
    "hidden from you.",
    "FieldChange.after": "The value after the change, as text; null when it has none or is "
    "hidden from you.",
    "FieldChange.redacted": "True when the values are hidden from you by the field policy.",
}

DESCRIPTIONS: dict[str, str] = {
    **TYPES,
    **ENUMS,
    **READS,
    **PAGE_INFO,
    **connection("Device", "devices"),
    **connection("AuditEvent", "audit events"),
}
