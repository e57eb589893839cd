"""How the policy table shows in the schema: one SDL directive per restricted rule.

The directives only describe; enforcement is the document pass (`permissions.document_policy`,
applied by `permissions.enforcement`), decided once per document rather than hooked on every
row, so a public field and an allowed restricted field cost the same as an unguarded one.
"""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.schema_directive import Location

from permissions.policy import Rule, rule_for

FORBIDDEN = "FORBIDDEN"


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


DIRECTIVES: dict[Rule, object] = {
    Rule.SSC_ONLY: SscOnlyDirective(),
    Rule.AUDITORS: AuditorsOnlyDirective(),
    Rule.DEVICE_WRITERS: DeviceWritersDirective(),
}


def forbidden(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": FORBIDDEN})


def policy_directives(type_name: str, field_name: str) -> list[object]:
    """The SDL directive that marks a restricted field or input field, from the table."""
    rule = rule_for(type_name, field_name)
    return [DIRECTIVES[rule]] if rule in DIRECTIVES else []
