"""Descriptions of CPL entries as SECAS publishes them and MP231's submissions, and of the
SSC's stack search (keys: `schema.descriptions`)."""

from __future__ import annotations

DESCRIPTIONS: dict[str, str] = {
    "Query.cplEntry": "The firmware of a published CPL entry, by its entry id (any case).",
    "Query.cplEntry(id)": "The entry id as the published CPL writes it, in any case.",
    "Query.firmwareByZigbeeStack": (
        "Which firmware of which devices runs a Zigbee stack (the firmware's own stack version, "
        "else its device's), matched case-insensitively, whole or by prefix; by device, oldest "
        "firmware first (SSC only)."
    ),
    "Query.firmwareByZigbeeStack(stackVersion)": "The stack version to look for (case ignored).",
    "Query.firmwareByZigbeeStack(match)": (
        "Whole value (EXACT_IGNORE_CASE, the default) or its start (PREFIX)."
    ),
    "Manufacturer.firmwareContact": (
        "Whom to ask about this manufacturer's firmware and its upgrade pathways (the Firmware "
        "Information Repository's contact); set by the manufacturer or SECAS."
    ),
    "Firmware.cplEntryId": (
        "The published CPL's entry id of this device at this hardware version with this firmware "
        "version; unique. Null for entries recorded before ids were kept."
    ),
    "Firmware.gbcsVersion": "The GBCS version the entry states.",
    "Firmware.smetsChtsVersion": "The SMETS or CHTS version the entry states.",
    "Firmware.predecessors": (
        "What the entry's submission said of the earlier versions that can be upgraded to it "
        "(`upgradesFrom` holds the pathways)."
    ),
    "Firmware.cpaCertificate": "The entry's CPA certificate, if it has one.",
    "Firmware.zigbeeStackVersion": (
        "The Zigbee stack this firmware runs; when the entry gives none, the device's."
    ),
    "PredecessorStatement": (
        "What a CPL entry's submission said of the earlier versions that can be upgraded to it "
        "(MP231)."
    ),
    "PredecessorStatement.LISTED": (
        "It listed them: the PUBLISHED pathways from them were made with it."
    ),
    "PredecessorStatement.NONE_EARLIER": (
        'MP231\'s "N/A": no earlier version can be upgraded to it.'
    ),
    "PredecessorStatement.NOT_SUPPLIED": (
        "Nothing was said (MP231 asks it of older entries on a best-endeavours basis): a pathway "
        "may be missing, not impossible; ask the manufacturer's `firmwareContact`."
    ),
    "CpaCertificate": "The CPL entry's CPA certificate (MP209: its expiry matters).",
    "CpaCertificate.reference": "The certificate's reference, as issued.",
    "CpaCertificate.expiresOn": "When it expires, if stated.",
    "DeviceFilter.zigbeeMatch": (
        "How `zigbeeStackVersion` and `zigbeeChipsetVendor` match, case ignored: the whole value "
        "(EXACT_IGNORE_CASE, when null) or its start (PREFIX)."
    ),
    "TextMatch": "How free text is matched, case ignored.",
    "TextMatch.EXACT_IGNORE_CASE": "The whole value, case ignored.",
    "TextMatch.PREFIX": "Its start, case ignored.",
    "ChangeKind.FIRMWARE_DETAILS_CHANGED": (
        "An entry's published facts (entry id, GBCS, SMETS/CHTS, CPA certificate, image hash) "
        "filled in or changed by an import."
    ),
    "UpgradePlan.contact": (
        "For a blocked plan, whom to ask: the manufacturer's firmware contact "
        "(`Manufacturer.firmwareContact`); null for a reachable plan."
    ),
    "PlanBlockReason.PATHWAYS_NOT_SUPPLIED": (
        "No route, but a firmware the route would need came without its predecessors "
        "(NOT_SUPPLIED): a gap in the Manufacturer's data, not a dead end; ask its `contact`."
    ),
    "FleetSummary.blockedByReason": (
        "The blocked meters by reason, in the reasons' order, items with a problem last; only "
        "reasons some item has."
    ),
    "BlockedMeters": "Blocked meters of one reason.",
    "BlockedMeters.reason": (
        "Why their plans are blocked; null for items that could not be planned (they have a "
        "`problem`)."
    ),
    "BlockedMeters.meters": "Their meters, as the items count them.",
    "Mutation.setFirmwareContact": (
        "Set whom Suppliers should ask about a manufacturer's firmware and its pathways (the "
        "Firmware Information Repository's contact): by the manufacturer itself, or SECAS."
    ),
    "AddFirmwareInput.cplEntryId": "The published CPL's entry id; unique across the CPL.",
    "AddFirmwareInput.gbcsVersion": "The GBCS version the entry states.",
    "AddFirmwareInput.smetsChtsVersion": "The SMETS or CHTS version the entry states.",
    "AddFirmwareInput.cpaCertificate": "The entry's CPA certificate, if the device needs one.",
    "AddFirmwareInput.zigbeeStackVersion": (
        "The Zigbee stack this firmware runs, if not the device's (read by SSC only)."
    ),
    "AddFirmwareInput.upgradableFrom": (
        "Earlier firmware versions of the device that can be upgraded to this one: each becomes a"
        " PUBLISHED pathway."
    ),
    "AddFirmwareInput.upgradableFromEntries": (
        "The same, by their CPL entry ids (MP231's submission)."
    ),
    "AddFirmwareInput.noEarlierVersion": (
        'True for MP231\'s "N/A": no earlier version can be upgraded to this one. Neither this nor'
        " a list: the pathways are NOT_SUPPLIED."
    ),
    "CpaCertificateInput": "A CPL entry's CPA certificate.",
    "CpaCertificateInput.reference": "The certificate's reference, as issued.",
    "CpaCertificateInput.expiresOn": "When it expires, if stated.",
    "SetFirmwareContactInput": "A manufacturer's firmware contact.",
    "SetFirmwareContactInput.manufacturerIdentifier": (
        "The manufacturer (4 hex digits, any case): your own, unless you are SECAS."
    ),
    "SetFirmwareContactInput.firmwareContact": (
        "Whom to ask about your firmware and its pathways (a name, an address, a URL; at most 500"
        " characters); blank clears it."
    ),
}
