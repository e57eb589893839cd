"""The policy table: one rule for every field of the schema and every restricted argument.

Deny by default: a field with no rule here fails the policy test, and `rule_for` refuses it.
The README's permission matrix is generated from this table (`permissions.readme`), the SDL's
directives are attached from it (`permissions.strawberry_adapter.policy_directives`), every
operation is checked against it before it runs (`permissions.document_policy`) and its row
scopes are applied by `permissions.row_scopes`: the table is the one place a rule is written.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from permissions.device_filter import DEVICE_FILTER
from permissions.principal import PartyCategory, Principal


class Audience(enum.Enum):
    """A reader who is no one in particular."""

    EVERY_PARTY = "every Party"  # a webhook body: sent to whoever registered, of any category


class Rule(enum.Enum):
    """Who may read a field or use an argument (the value is the README's wording)."""

    PUBLIC = "every authenticated Party"
    SSC_ONLY = "SSC only"
    AUDITORS = "SECAS and SSC"
    DEVICE_WRITERS = "the device's own Manufacturer, or SECAS"
    OWN_WEBHOOKS = "every authenticated Party, for its own webhooks only"
    OWN_FLEET = "a Supplier, for its own fleet only"


SUPPLIERS = frozenset({PartyCategory.LARGE_SUPPLIER, PartyCategory.SMALL_SUPPLIER})
ALLOWED: dict[Rule, frozenset[PartyCategory]] = {
    Rule.PUBLIC: frozenset(PartyCategory),
    Rule.SSC_ONLY: frozenset({PartyCategory.SSC}),
    Rule.AUDITORS: frozenset({PartyCategory.SECAS, PartyCategory.SSC}),
    Rule.DEVICE_WRITERS: frozenset({PartyCategory.MANUFACTURER, PartyCategory.SECAS}),
    Rule.OWN_WEBHOOKS: frozenset(PartyCategory),
    Rule.OWN_FLEET: SUPPLIERS,
}


class Owner(enum.Enum):
    """The token claim that names whose rows a scoped caller owns."""

    MANUFACTURER = "manufacturer_id"
    PARTY = "party_id"


@dataclass(frozen=True)
class RowScope:
    """A rule's row scope: the `categories` it allows act only on rows their `owner` claim
    names (`permissions.row_scopes` applies it); the other allowed categories act on any row.
    `mark` is the README matrix's word for such a category."""

    owner: Owner
    categories: frozenset[PartyCategory]
    mark: str


ROW_SCOPES: dict[Rule, RowScope] = {
    Rule.DEVICE_WRITERS: RowScope(
        Owner.MANUFACTURER, frozenset({PartyCategory.MANUFACTURER}), "own devices"
    ),
    Rule.OWN_WEBHOOKS: RowScope(Owner.PARTY, frozenset(PartyCategory), "own"),
    # A Party's commercial data: SECAS and the SSC are not granted the rule at all.
    Rule.OWN_FLEET: RowScope(Owner.PARTY, SUPPLIERS, "own"),
}

P, SSC, AUDIT, WRITE, OWN = (
    Rule.PUBLIC,
    Rule.SSC_ONLY,
    Rule.AUDITORS,
    Rule.DEVICE_WRITERS,
    Rule.OWN_WEBHOOKS,
)
MUTATION_ERRORS = ("code", "message", "field")


def _all(rule: Rule, *fields: str) -> dict[str, Rule]:
    return dict.fromkeys(fields, rule)


POLICY: dict[str, dict[str, Rule]] = {
    "Query": {
        **_all(P, "viewer", "manufacturers", "devices", "device", "firmware", "cplEntry"),
        **_all(P, "upgradePath", "fleetPlan", "premisesPlan"),
        "auditEvents": AUDIT,
        "sscAccessLog": SSC,
        "firmwareByZigbeeStack": SSC,
        **_all(OWN, "webhooks", "webhookDeliveries"),
        **_all(Rule.OWN_FLEET, "myFleet", "fleetDigest"),
    },
    "UpgradePlan": {
        **_all(P, "device", "from", "target", "reachable", "reason", "steps"),
        **_all(P, "withdrawalsScheduled", "contact"),
    },
    "ScheduledWithdrawal": _all(P, "effectiveOn", "firmware", "pathway"),
    "FleetPlan": _all(P, "entries", "summary", "premises"),
    "FleetPremisesEntry": _all(P, "index", "premisesCount", "plan", "problem"),
    "PremisesPlan": _all(P, "steps", "blocked", "notUpdatableOverTheAir"),
    "PremisesStep": _all(P, "order", "index", "device", "pathway", "carriedOutBy", "waitsFor"),
    "PremisesBlock": _all(P, "index", "device", "firmwareVersion", "reason", "detail"),
    # Reached only through Query.fleetDigest, a Supplier's own.
    "FleetDigest": _all(P, "since", "changes", "impact"),
    "FleetPlanEntry": _all(
        P, "index", "device", "firmwareVersion", "meterCount", "plan", "problem"
    ),
    "FleetSummary": _all(
        P, "meters", "upToDate", "upgradable", "blocked", "metersByStepCount", "blockedByReason"
    )
    | _all(P, "premises", "premisesBlockedByPrerequisites", "metersBlockedByPrerequisites"),
    "StepCount": _all(P, "steps", "meters"),
    "BlockedMeters": _all(P, "reason", "meters"),
    "Subscription": _all(P, "cplChanges"),
    "CplChange": _all(P, "eventId", "kind", "occurredAt", "reason", "device", "firmware")
    | _all(P, "pathway", "prerequisite")
    | {"fleetImpact": Rule.OWN_FLEET},
    # Reached only through CplChange.fleetImpact (and FleetDigest), a Supplier's own.
    "FleetImpact": _all(P, "affectedMeters", "newlyBlockedMeters", "newlyUpgradableMeters"),
    "Webhook": _all(P, "id", "url", "deviceIds", "kinds", "createdAt"),
    "WebhookDelivery": {
        **_all(P, "id", "webhook", "eventId", "kind", "status", "attempts", "nextAttemptAt"),
        **_all(P, "lastAttemptAt", "lastStatusCode", "lastError", "deliveredAt", "createdAt"),
    },
    "WebhookDeliveryConnection": _all(P, "totalCount", "nodes", "edges", "pageInfo"),
    "WebhookDeliveryEdge": _all(P, "cursor", "node"),
    "RegisterWebhookSuccess": _all(P, "webhook", "secret"),
    "DeleteWebhookSuccess": _all(P, "webhook"),
    "Viewer": _all(P, "partyId", "partyCategory", "manufacturerIdentifier"),
    # Reached only through Query.sscAccessLog, which is the SSC's alone.
    "SscAccess": _all(
        P, "occurredAt", "actorPartyId", "actorSub", "operationName", "fields", "deviceIds"
    ),
    "SscAccessConnection": _all(P, "totalCount", "nodes", "edges", "pageInfo"),
    "SscAccessEdge": _all(P, "cursor", "node"),
    "Manufacturer": _all(P, "id", "name", "manufacturerIdentifier", "devices", "firmwareContact"),
    "Device": {
        **_all(
            P,
            "id",
            "manufacturer",
            "deviceType",
            "modelIdentifier",
            "modelName",
            "hardwareVersion",
            "zigbeeBand",
            "firmware",
            "latestFirmware",
            "history",
        ),
        "zigbeeStackVersion": SSC,
        "zigbeeChipsetVendor": SSC,
    },
    "Firmware": {
        **_all(P, "id", "device", "version", "status", "imageHash", "addedToCplOn"),
        **_all(P, "withdrawnOn", "withdrawalScheduledOn", "upgradesTo", "upgradesFrom"),
        **_all(P, "prerequisites", "history"),
        # The published CPL entry's own facts.
        **_all(P, "cplEntryId", "gbcsVersion", "smetsChtsVersion", "cpaCertificate"),
        "predecessors": P,
        "zigbeeStackVersion": SSC,
    },
    "CpaCertificate": _all(P, "reference", "expiresOn"),
    "Prerequisite": _all(P, "id", "firmware", "requiresDeviceType", "requiresAnyOfFirmware")
    | _all(P, "requiresGbcsVersion", "status", "declaredAt", "declaredBy", "history"),
    "UpgradePathway": _all(
        P,
        "id",
        "device",
        "from",
        "to",
        "status",
        "notes",
        "revision",
        "publishedAt",
        "publishedBy",
        "withdrawalScheduledOn",
        "history",
    ),
    "AuditEvent": _all(
        P, "id", "occurredAt", "action", "reason", "actorPartyId", "actorPartyCategory", "changes"
    ),
    "FieldChange": _all(P, "field", "before", "after", "redacted"),
    "DeviceConnection": _all(P, "totalCount", "nodes", "edges", "pageInfo"),
    "DeviceEdge": _all(P, "cursor", "node"),
    "AuditEventConnection": _all(P, "totalCount", "nodes", "edges", "pageInfo"),
    "AuditEventEdge": _all(P, "cursor", "node"),
    "PageInfo": _all(P, "hasNextPage", "hasPreviousPage", "startCursor", "endCursor"),
    "Mutation": _all(
        WRITE,
        "addDevice",
        "addFirmware",
        "publishUpgradePathway",
        "correctUpgradePathway",
        "withdrawUpgradePathway",
        "withdrawFirmware",
        "setZigbeeInformation",
        "setFirmwareContact",
    )
    | _all(WRITE, "declarePrerequisite", "withdrawPrerequisite")
    | _all(OWN, "registerWebhook", "deleteWebhook")
    | {"replaceFleet": Rule.OWN_FLEET},
    "AddDeviceSuccess": _all(P, "device"),
    "AddFirmwareSuccess": _all(P, "firmware"),
    "PublishUpgradePathwaySuccess": _all(P, "pathway"),
    "CorrectUpgradePathwaySuccess": _all(P, "pathway"),
    "WithdrawUpgradePathwaySuccess": _all(P, "pathway"),
    "WithdrawFirmwareSuccess": _all(P, "firmware"),
    "SetZigbeeInformationSuccess": _all(P, "device"),
    "DeclarePrerequisiteSuccess": _all(P, "prerequisite"),
    "WithdrawPrerequisiteSuccess": _all(P, "prerequisite"),
    "SetFirmwareContactSuccess": _all(P, "manufacturer"),
    "MutationError": _all(P, *MUTATION_ERRORS),
    "ValidationError": _all(P, *MUTATION_ERRORS),
    "NotFoundError": _all(P, *MUTATION_ERRORS),
    "ConflictError": _all(P, *MUTATION_ERRORS),
    # Reached only through Query.myFleet and Mutation.replaceFleet, a Supplier's own.
    "StoredFleet": _all(P, "replacedAt", "meters", "groups", "premises", "plan"),
    "FleetGroup": _all(P, "device", "firmwareVersion", "meterCount"),
    "StoredPremises": _all(P, "premisesCount", "devices"),
    "StoredPremisesDevice": _all(P, "device", "firmwareVersion"),
    "ReplaceFleetSuccess": _all(P, "fleet"),
    "InvalidFleetError": _all(P, *MUTATION_ERRORS, "problems", "premisesProblems"),
    "FleetItemProblem": _all(P, "index", "problem"),
    "ReplaceFleetInput": _all(P, "items", "premises", "idempotencyKey"),
    # Arguments: the fields of input types. Using a restricted one is refused for the whole
    # root field; `DeviceFilter`'s are added below, each with the rule of the field it matches.
    # Mutation inputs: who may send them is the mutation's rule; a Manufacturer may *write* the
    # SSC-only Zigbee details of its own devices, and still reads them back as null.
    "AddDeviceInput": _all(
        P,
        "manufacturerIdentifier",
        "modelIdentifier",
        "modelName",
        "hardwareVersion",
        "deviceType",
        "zigbeeBand",
        "zigbeeStackVersion",
        "zigbeeChipsetVendor",
        "idempotencyKey",
    ),
    # A Manufacturer may write a firmware's SSC-only stack version, as a device's.
    "AddFirmwareInput": {
        **_all(P, "deviceId", "version", "imageHash", "addedToCplOn", "idempotencyKey"),
        **_all(P, "cplEntryId", "gbcsVersion", "smetsChtsVersion", "cpaCertificate"),
        **_all(P, "zigbeeStackVersion", "upgradableFrom", "upgradableFromEntries"),
        "noEarlierVersion": P,
    },
    "CpaCertificateInput": _all(P, "reference", "expiresOn"),
    "SetFirmwareContactInput": _all(
        P, "manufacturerIdentifier", "firmwareContact", "idempotencyKey"
    ),
    "PublishUpgradePathwayInput": _all(
        P, "deviceId", "fromVersion", "toVersion", "notes", "idempotencyKey"
    ),
    "CorrectUpgradePathwayInput": _all(P, "pathwayId", "expectedRevision", "reason", "notes")
    | _all(P, "fromVersion", "toVersion", "idempotencyKey"),
    "WithdrawUpgradePathwayInput": _all(P, "pathwayId", "reason", "idempotencyKey", "effectiveOn"),
    "DeclarePrerequisiteInput": _all(P, "firmwareId", "requiresDeviceType", "idempotencyKey")
    | _all(P, "requiresAnyOfFirmware", "requiresGbcsVersion"),
    "WithdrawPrerequisiteInput": _all(P, "prerequisiteId", "reason", "idempotencyKey"),
    "RegisterWebhookInput": _all(P, "url", "deviceIds", "kinds"),
    "FleetItemInput": _all(P, "deviceId", "manufacturerIdentifier", "modelIdentifier")
    | _all(P, "hardwareVersion", "firmwareVersion", "meterCount"),
    "FleetPremisesInput": _all(P, "devices", "premisesCount"),
    "PremisesDeviceInput": _all(P, "deviceId", "manufacturerIdentifier", "modelIdentifier")
    | _all(P, "hardwareVersion", "firmwareVersion"),
    "DeleteWebhookInput": _all(P, "id"),
    "WithdrawFirmwareInput": _all(P, "firmwareId", "reason", "idempotencyKey", "effectiveOn"),
    "SetZigbeeInformationInput": _all(
        P,
        "deviceId",
        "zigbeeBand",
        "zigbeeStackVersion",
        "zigbeeChipsetVendor",
        "reason",
        "idempotencyKey",
    ),
}
# A filter field takes the rule of the field whose value it matches (`permissions.device_filter`),
# so that a filter can never be used to probe a value the caller cannot read.
POLICY["DeviceFilter"] = {field.name: POLICY[field.on][field.rule_of] for field in DEVICE_FILTER}


# Fields whose answer depends on who asks, not only on what the caller's category may read:
# whatever caches answers keys these on the caller's identity. A subscription event that
# selects `fleetImpact` is shared by the subscribers of one Party only (`schema.subscriptions`).
CALLER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("Query", "viewer"),
        ("Query", "myFleet"),
        ("Query", "fleetDigest"),
        ("CplChange", "fleetImpact"),
    }
)
# Fields that read the caller's stored fleet: a cache key holds its own revision too, since a
# replacement (a caller-scoped write) leaves the data revision alone.
FLEET_SCOPED: frozenset[tuple[str, str]] = frozenset({("Query", "myFleet")})
# Fields whose answer changes while the data revision stays (a Party's webhooks, delivery
# attempts, the SSC access log): answers that select them are never cached.
UNVERSIONED: frozenset[tuple[str, str]] = frozenset(
    {("Query", "sscAccessLog")}
    | {
        (type_name, field_name)
        for type_name, fields in POLICY.items()
        for field_name, rule in fields.items()
        if rule is Rule.OWN_WEBHOOKS
    }
)


def rule_for(type_name: str, field_name: str) -> Rule:
    """The rule of a field; a field the table does not name is an error, never public."""
    try:
        return POLICY[type_name][field_name]
    except KeyError:
        raise LookupError(f"no policy rule for {type_name}.{field_name}") from None


def allows(principal: Principal | None, type_name: str, field_name: str) -> bool:
    return (
        principal is not None
        and principal.party_category in ALLOWED[rule_for(type_name, field_name)]
    )


@functools.cache
def capability(category: PartyCategory) -> tuple[str, ...]:
    """The rules a category is granted. Every answer the policy shapes (denied fields, the
    values a caller's view of the CPL holds, redacted history, hidden reasons) depends on the
    category only through this, so two categories with the same capability see the same
    answers: the visibility class of the caches and views. Made once a category."""
    return tuple(rule.name for rule in Rule if category in ALLOWED[rule])


@functools.cache
def hidden_fields(granted: tuple[str, ...], type_name: str) -> frozenset[str]:
    """The fields of `type_name` whose rule a capability is not granted: what its view of the
    data must not hold at all (`resolvers.reads.snapshot.CplSnapshot.view`)."""
    return frozenset(
        name for name, rule in POLICY.get(type_name, {}).items() if rule.name not in granted
    )


def change_subject(
    firmware_id: int | None, pathway_id: int | None, prerequisite_id: int | None = None
) -> str:
    """The type whose fields a history entry's changes name."""
    if prerequisite_id is not None:
        return "Prerequisite"
    if pathway_id is not None:
        return "UpgradePathway"
    if firmware_id is not None:
        return "Firmware"
    return "Device"


def is_ssc_only(type_name: str, field_name: str) -> bool:
    """Whether a field holds a value only the SSC may see (what the SSC access log records)."""
    return POLICY.get(type_name, {}).get(field_name) is Rule.SSC_ONLY


def readable_by_every_party(type_name: str, field_name: str) -> bool:
    """For what is sent to no one in particular (webhooks): only fields every Party may read."""
    try:
        return ALLOWED[rule_for(type_name, field_name)] == ALLOWED[Rule.PUBLIC]
    except LookupError:
        return False


def may_read_change(principal: Principal | None, type_name: str, field_name: str) -> bool:
    """Whether a history entry's values for this field may be shown; a field the table does not
    know is hidden (deny by default, in history too)."""
    try:
        return allows(principal, type_name, field_name)
    except LookupError:
        return False


def reason_readable(
    reader: Principal | Audience | None,
    subject: str,
    changes: Iterable[Mapping[str, Any]] | None,
) -> bool:
    """Whether an event's free-text reason may be shown to `reader`: it may repeat any value
    the event changed, so only to a reader who may see every one of them. For history and
    subscriptions the reader is the caller (None sees nothing, as in `may_read_change`); for a
    webhook body it is `Audience.EVERY_PARTY`, so only fields every Party may read count."""
    fields = [change["field"] for change in changes or ()]
    if reader is Audience.EVERY_PARTY:
        return all(readable_by_every_party(subject, name) for name in fields)
    return all(may_read_change(reader, subject, name) for name in fields)
