"""The few permission classes the policy table needs, and how a field gets them.

A public field carries no permission class at all: authentication already happened before
execution, and a per-field hook costs microseconds on every row. Only restricted fields pay.
"""

from __future__ import annotations

from typing import Any, ClassVar

import strawberry
from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location
from strawberry.types import Info

from permissions.policy import ALLOWED, Rule, rule_for
from permissions.principal import Principal

FORBIDDEN = "FORBIDDEN"
ROOT_TYPES = frozenset({"Query", "Mutation", "Subscription"})


@strawberry.schema_directive(
    name="sscOnly",
    locations=[Location.FIELD_DEFINITION, Location.INPUT_FIELD_DEFINITION],
    description="Readable, and usable as a filter, by the Security Sub-Committee (SSC) only.",
)
class SscOnlyDirective:
    pass


@strawberry.schema_directive(
    name="auditorsOnly",
    locations=[Location.FIELD_DEFINITION],
    description="For SECAS and SSC only.",
)
class AuditorsOnlyDirective:
    pass


@strawberry.schema_directive(
    name="deviceWriters",
    locations=[Location.FIELD_DEFINITION],
    description="For a Manufacturer on its own devices, and for SECAS on any.",
)
class DeviceWritersDirective:
    pass


def forbidden(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": FORBIDDEN})


class PolicyPermission(BasePermission):
    """Grants a field to the Party categories its rule allows; nobody without a principal."""

    rule: ClassVar[Rule]
    error_extensions: ClassVar[dict[str, Any]] = {"code": FORBIDDEN}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal: Principal | None = info.context.principal
        return principal is not None and principal.party_category in ALLOWED[self.rule]


class SscOnly(PolicyPermission):
    """Grants SSC-only fields to the SSC, and notes each value granted for the access log."""

    rule = Rule.SSC_ONLY
    message = "Forbidden: this field is readable by the SSC only."
    _schema_directive = SscOnlyDirective()

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        granted = super().has_permission(source, info, **kwargs)
        parent = info.path.typename
        if granted and source is not None and parent not in ROOT_TYPES:
            # A value on an object (a Device's Zigbee details), not an SSC-only root field.
            info.context.ssc_reads.note(f"{parent}.{info.field_name}", getattr(source, "id", None))
        return granted


class AuditorsOnly(PolicyPermission):
    rule = Rule.AUDITORS
    message = "Forbidden: this field is for SECAS and the SSC only."
    _schema_directive = AuditorsOnlyDirective()


class DeviceWriters(PolicyPermission):
    """Who may run a mutation at all; which devices it may touch is checked on the device."""

    rule = Rule.DEVICE_WRITERS
    message = "Forbidden: only a device's own Manufacturer, or SECAS, may change it."
    _schema_directive = DeviceWritersDirective()


PERMISSION_CLASSES: dict[Rule, type[PolicyPermission]] = {
    Rule.SSC_ONLY: SscOnly,
    Rule.AUDITORS: AuditorsOnly,
    Rule.DEVICE_WRITERS: DeviceWriters,
}


def permission_extensions(type_name: str, field_name: str) -> list[FieldExtension]:
    """The field extensions that enforce the table's rule for one output field."""
    rule = rule_for(type_name, field_name)
    if ALLOWED[rule] == ALLOWED[Rule.PUBLIC]:
        return []  # every category may; what each one sees is scoped by its resolver
    return [PermissionExtension(permissions=[PERMISSION_CLASSES[rule]()])]


def input_directives(type_name: str, field_name: str) -> list[object]:
    """The SDL directive that marks a restricted input field (enforced by `check_input`)."""
    rule = rule_for(type_name, field_name)
    if rule is Rule.PUBLIC:
        return []
    return [PERMISSION_CLASSES[rule]._schema_directive]


def check_input(principal: Principal | None, type_name: str, values: dict[str, Any]) -> list[str]:
    """Refuse the whole root field when a restricted input field is used by a caller it denies.

    `values` maps GraphQL field names to what the caller sent; unset (None) fields are ignored.
    Returns the SSC-only fields that were used (allowed), for the SSC access log.
    """
    ssc_only = []
    for field_name, value in values.items():
        if value is None:
            continue
        rule = rule_for(type_name, field_name)
        if principal is None or principal.party_category not in ALLOWED[rule]:
            raise forbidden(f"Forbidden: {type_name}.{field_name} may be used by {rule.value}.")
        if rule is Rule.SSC_ONLY:
            ssc_only.append(f"{type_name}.{field_name}")
    return ssc_only
