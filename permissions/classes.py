"""How the policy table shows in the schema: one SDL directive per restricted rule, and a note
of each SSC-only value read for the SSC data-access log.

The directives only describe; enforcement is the document pass (`permissions.document_policy`,
applied by `permissions.enforcement`), decided once per document rather than hooked on every
row, so a public field and an allowed restricted field cost the same as an unguarded one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.schema_directive import Location
from strawberry.types import Info

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


class NoteSscRead(FieldExtension):
    """Notes each SSC-only value resolved, for the SSC data-access log. Only the SSC gets this
    far: for anyone else the policy pass has replaced the field before execution."""

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        info.context.ssc_reads.note(
            f"{info.path.typename}.{info.field_name}", getattr(source, "id", None)
        )
        return next_(source, info, **kwargs)


def policy_extensions(type_name: str, field_name: str) -> list[FieldExtension]:
    """What a field resolves with besides its value: a note of every SSC-only value read."""
    return [NoteSscRead()] if rule_for(type_name, field_name) is Rule.SSC_ONLY else []
