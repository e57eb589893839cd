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

import operator
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

from permissions.document_policy import Decision, Denial, decide, restricted_fields
from permissions.policy import ALLOWED, Rule, rule_for
from permissions.principal import PartyCategory
from permissions.ssc_access import NoteSscRead

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


class SharedAnswer(dict[str, Any]):
    """A completed answer shared between responses (kept with a capability's view and handed
    to every later request of it, `schema.completions`): never changed in place, so what is
    derived from it for a decision may be kept by its identity (`_nulled`)."""

    __slots__ = ()


# Where a stand-in stood below a value: the trail to it (list indices and keys, the client's
# key last), the response keys alone (the path an error is reported once for), its denial.
Found = tuple[tuple[Any, ...], tuple[str, ...], Denial]
Mark = tuple[tuple[str, ...], str]  # a response path and a client's key: reported once
# A shared answer with its stand-ins nulled, by (decision, answer), and a list of shared
# answers (a page) by (decision, its answers): a page of the same devices is copied once, not
# once a request, and walked once. Holds what it keys (no id is reused meanwhile); cleared
# when full, so bounded however many documents and revisions pass.
MAX_NULLED = 20_000
_nulled: dict[tuple[Any, ...], tuple[Decision, Any, Any, tuple[Found, ...]]] = {}


def _stand_ins(value: Any, decision: Decision) -> tuple[Any, tuple[Found, ...]]:
    """`value` with `null` under the client's own key for every stand-in below it, descending
    only under keys that lead to one, and where each stand-in stood, the first for each
    response path and key only, in answer order. A container that changes is a new one:
    completed answers are shared between responses, never changed."""
    if isinstance(value, list):
        shared = bool(value) and all(item.__class__ is SharedAnswer for item in value)
        key = ("[]", id(decision), *map(id, value)) if shared else None
        kept = _nulled.get(key) if key is not None else None
        if kept is not None and kept[0] is decision and _same(kept[1], value):
            return kept[2], kept[3]
        items, found = _list_stand_ins(value, decision)
        if key is not None:
            _keep(key, (decision, tuple(value), items, found))
        return items, found
    if value.__class__ is not SharedAnswer:
        return _null_dict(value, decision)
    key = (id(decision), id(value))
    kept = _nulled.get(key)
    if kept is not None and kept[0] is decision and kept[1] is value:
        return kept[2], kept[3]
    out, places = _null_dict(value, decision)
    _keep(key, (decision, value, out, places))
    return out, places


def _same(kept: tuple[Any, ...], items: list[Any]) -> bool:
    return len(kept) == len(items) and all(map(operator.is_, kept, items))


def _keep(key: tuple[Any, ...], entry: tuple[Decision, Any, Any, tuple[Found, ...]]) -> None:
    if len(_nulled) >= MAX_NULLED:
        _nulled.clear()
    _nulled[key] = entry


def _list_stand_ins(value: list[Any], decision: Decision) -> tuple[Any, tuple[Found, ...]]:
    found: list[Found] = []
    seen: set[Mark] = set()
    items = value
    for index, item in enumerate(value):
        if not isinstance(item, dict | list):
            continue
        new, below = _stand_ins(item, decision)
        for trail, keys, denial in below:
            if (keys, denial.key) not in seen:
                seen.add((keys, denial.key))
                found.append(((index, *trail), keys, denial))
        if new is not item:
            items = items if items is not value else list(value)
            items[index] = new
    return items, tuple(found)


def _null_dict(value: dict[str, Any], decision: Decision) -> tuple[Any, tuple[Found, ...]]:
    stand_ins = decision.stand_ins
    found: list[Found] = []
    seen: set[Mark] = set()
    out = value
    if not stand_ins.keys().isdisjoint(value):
        # The client's key where its stand-in stood; selected twice, where it first stood.
        out = {}
        for key, item in value.items():
            denial = stand_ins.get(key)
            if denial is None:
                out.setdefault(key, item)
                continue
            out[denial.key] = None
            if ((), denial.key) not in seen:
                seen.add(((), denial.key))
                found.append(((denial.key,), (), denial))
    for key, item in out.items():
        if key in decision.leads and isinstance(item, dict | list):
            new, below = _stand_ins(item, decision)
            for trail, keys, denial in below:
                if ((key, *keys), denial.key) not in seen:
                    seen.add(((key, *keys), denial.key))
                    found.append(((key, *trail), (key, *keys), denial))
            if new is not item:
                out = out if out is not value else dict(value)
                out[key] = new
    return out, tuple(found)


def apply_denials(decision: Decision, result: Any) -> None:
    """Null the denied selections in `result` (an execution result) and add their errors: one
    for each response path (list indices aside) where a denied selection turned up, at its
    first place, as `ErrorPolicy` reports a field that fails on many rows."""
    data = getattr(result, "data", None)
    if not decision.stand_ins or not isinstance(data, dict):
        return
    result.data, found = _stand_ins(data, decision)
    by_path: dict[tuple[str, ...], list[Found]] = {}  # each path's, the first path's first
    for place in found:
        by_path.setdefault(place[1], []).append(place)
    errors = []
    for trail, _keys, denial in (place for places in by_path.values() for place in places):
        error = GraphQLError(denial.message, path=list(trail), extensions={"code": FORBIDDEN})
        error.nodes, error.source, error.positions, error.locations = denial.placed
        errors.append(error)
        if denial.non_null and len(trail) == 1:
            result.data = None  # a non-null root field that fails nulls the whole answer
    if errors:
        result.errors = [*(result.errors or []), *errors]


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
