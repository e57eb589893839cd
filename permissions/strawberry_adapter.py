"""The policy's Strawberry adapter: everything Strawberry sees of the policy table.

- **Marks**: one SDL directive per restricted rule (`policy_directives`), and on SSC-only
  fields a note of each value read, for the SSC data-access log (`policy_extensions`). They
  only describe and record.
- **Enforcement**: `PolicyEnforcement` applies the document pass's decision
  (`permissions.document_policy`) to each operation. Before execution, a restricted input field
  used by a category it denies refuses the operation, and the document is swapped for the
  decision's copy, in which denied fields are stand-ins that resolve to their parent's type
  name. After execution (and on each subscription event), every stand-in becomes `null` under
  the client's key, and each response path where a denied selection appeared gets one
  `FORBIDDEN` error naming where it first did.

No hook runs per row, for anyone, so a public field and an allowed restricted field cost the
same as an unguarded one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import strawberry
from graphql import (
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    get_operation_ast,
    value_from_ast_untyped,
)
from graphql.execution.values import VariableValues, get_variable_values
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.schema_directive import Location

from permissions.denials import FORBIDDEN, apply_denials
from permissions.document_policy import Decision, decide, restricted_fields
from permissions.policy import ALLOWED, Rule, rule_for
from permissions.principal import PartyCategory
from permissions.ssc_access import NoteSscRead


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


@strawberry.schema_directive(
    name="ownFleet",
    locations=[Location.FIELD_DEFINITION],
    description="For a Supplier, on its own stored fleet only; no other Party reads it.",
)
class OwnFleetDirective:
    pass


DIRECTIVES: dict[Rule, object] = {
    Rule.SSC_ONLY: SscOnlyDirective(),
    Rule.AUDITORS: AuditorsOnlyDirective(),
    Rule.DEVICE_WRITERS: DeviceWritersDirective(),
    Rule.OWN_FLEET: OwnFleetDirective(),
}


def forbidden(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": FORBIDDEN})


def policy_directives(type_name: str, field_name: str) -> list[object]:
    """The SDL directive that marks a restricted field or input field, from the table."""
    rule = rule_for(type_name, field_name)
    return [DIRECTIVES[rule]] if rule in DIRECTIVES else []


def policy_extensions(type_name: str, field_name: str) -> list[FieldExtension]:
    """What a field resolves with besides its value: a note of every SSC-only value read."""
    return [NoteSscRead()] if rule_for(type_name, field_name) is Rule.SSC_ONLY else []


def _dig(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def refusal_message(type_name: str, field: str, rule: Rule) -> str:
    return f"Forbidden: {type_name}.{field} may be used by {rule.value}."


def coerced_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode | None, raw: dict[str, Any] | None
) -> dict[str, Any]:
    """The operation's variables as execution will see them: the request's values coerced,
    and each variable's default where the request gives none (a default is a value the
    caller sent too). Invalid variables give none here: execution refuses them itself."""
    if operation is None or not operation.variable_definitions:
        return {}
    found = get_variable_values(schema, operation.variable_definitions, raw or {})
    return found.coerced if isinstance(found, VariableValues) else {}


def refuse_restricted_arguments(
    decision: Decision,
    category: PartyCategory,
    schema: GraphQLSchema,
    operation: OperationDefinitionNode | None,
    variables: dict[str, Any] | None,
) -> None:
    """Raise FORBIDDEN when the operation sets a restricted input field that is not the
    category's to use: a filter must never probe a value its caller cannot read, even one that
    matches nothing. Read from the coerced values, defaults applied; the resolver that uses
    the input checks it again and notes the SSC's use (`refuse_restricted_input`)."""
    coerced = coerced_variables(schema, operation, variables) if decision.arguments else {}
    for site in decision.arguments:
        value = value_from_ast_untyped(site.argument.value, coerced)
        for dotted, rule in restricted_fields(site.input_type).items():
            if _dig(value, dotted) is None:
                continue
            field = dotted.rsplit(".", 1)[-1]
            if category not in ALLOWED[rule]:
                raise GraphQLError(
                    refusal_message(site.input_type.name, field, rule),
                    nodes=[site.node],
                    path=list(site.path),
                    extensions={"code": FORBIDDEN},
                )


def refuse_restricted_input(context: Any, type_name: str, used: Iterable[str]) -> None:
    """Where an input is used (the device search), from its typed, coerced value: raise
    FORBIDDEN for a field the caller's category may not use, and note an SSC-only one for the
    SSC access log. The document pass refuses the same before execution; this holds whatever
    road the value took (a variable, its default, a persisted or cached document)."""
    category = context.principal.party_category
    for field in used:
        rule = rule_for(type_name, field)
        if category not in ALLOWED[rule]:
            raise forbidden(refusal_message(type_name, field, rule))
        if rule is Rule.SSC_ONLY:
            context.ssc_reads.note_filter(f"{type_name}.{field}")


class PolicyEnforcement(SchemaExtension):
    """Runs after validation and the limits, for queries, mutations and subscriptions alike."""

    decision: Decision | None = None

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        principal = getattr(context.context, "principal", None)
        if principal is None:
            raise forbidden("Forbidden: no caller.")  # authentication runs first; never here
        category = principal.party_category
        schema, document = context.schema._schema, context.graphql_document
        assert document is not None  # parsed and validated before execution
        self.decision = decide(schema, document, context.operation_name, category)
        if self.decision is not None:
            operation = get_operation_ast(document, context.operation_name)
            refuse_restricted_arguments(
                self.decision, category, schema, operation, context.variables
            )
            context.graphql_document = self.decision.document
        yield
        if self.decision is not None:
            apply_denials(self.decision, context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        if self.decision is not None:
            apply_denials(self.decision, result)
        yield
