"""The policy decided once per document: which selections a caller's category may not read and
which arguments carry restricted input fields, before anything executes.

Like Apollo Router's and Hot Chocolate's authorisation, one pass over the validated document
replaces per-row permission hooks. For a (document, operation, category) it yields a
`Decision`, cached: a copy of the document in which every denied field is replaced by
`__typename` under the same response key (so execution never resolves it, and graphql-core
itself finds every place it lands, through fragments and type conditions alike), the response
paths where those stand-ins are to be turned into `null` with one `FORBIDDEN` error each, and
the arguments whose values must be checked against the restricted input fields.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    NameNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    get_operation_ast,
    visit,
)

from permissions.policy import ALLOWED, CALLER_SCOPED, UNVERSIONED, Rule, rule_for
from permissions.principal import PartyCategory

MESSAGES: dict[Rule, str] = {
    Rule.SSC_ONLY: "Forbidden: this field is readable by the SSC only.",
    Rule.AUDITORS: "Forbidden: this field is for SECAS and the SSC only.",
    Rule.DEVICE_WRITERS: "Forbidden: only a device's own Manufacturer, or SECAS, may change it.",
}


@dataclass(frozen=True)
class Denial:
    """A field selection the caller may not read: where it stands in the answer and why."""

    path: tuple[str, ...]  # response keys from the root, lists not counted
    node: FieldNode
    message: str
    non_null: bool  # a denied non-null field nulls its parent, as a failing resolver would

    @functools.cached_property
    def placed(self) -> tuple[Any, Any, Any, Any]:
        """Where the selection stands in the document, as a `GraphQLError` names it (nodes,
        source, positions, locations): found once, since finding a line and column scans the
        document (15 µs an error, as much as the rest of a denial's work). Never changed."""
        probe = GraphQLError(self.message, nodes=[self.node])
        return probe.nodes, probe.source, probe.positions, probe.locations


@dataclass(frozen=True)
class RestrictedArgument:
    """An argument whose input type holds restricted fields: its value decides, per request."""

    path: tuple[str, ...]
    node: FieldNode
    argument: ArgumentNode
    input_type: GraphQLInputObjectType


@dataclass(frozen=True)
class Decision:
    document: DocumentNode
    denials: tuple[Denial, ...]
    arguments: tuple[RestrictedArgument, ...]
    caller_scoped: bool  # the answer depends on who asks, not only on what they may read
    versioned: bool  # the answer changes only with the data revision, so it may be cached


def _rule(parent: GraphQLNamedType, name: str) -> Rule | None:
    """The field's rule; None for introspection, which is the schema's shape, not its data."""
    if name.startswith("__"):
        return None
    return rule_for(parent.name, name)


def _field(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    fields = getattr(parent, "fields", None)
    return fields.get(name) if fields and not name.startswith("__") else None


def restricted_fields(input_type: GraphQLInputObjectType) -> dict[str, Rule]:
    """The fields of an input type (at any depth, by dotted path) that not everyone may use."""
    found: dict[str, Rule] = {}
    for name, field in input_type.fields.items():
        rule = rule_for(input_type.name, name)
        if ALLOWED[rule] != ALLOWED[Rule.PUBLIC]:
            found[name] = rule
        inner = get_named_type(field.type)
        if isinstance(inner, GraphQLInputObjectType):
            found |= {f"{name}.{key}": r for key, r in restricted_fields(inner).items()}
    return found


class _Walk:
    """One pass over an operation, fragments opened where they are spread."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, category: PartyCategory):
        self.schema = schema
        self.category = category
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.denials: dict[tuple[str, ...], Denial] = {}
        self.arguments: list[RestrictedArgument] = []
        self.caller_scoped = False
        self.versioned = True
        self.seen: set[tuple[int, str, tuple[str, ...]]] = set()

    def denied(self, parent: GraphQLNamedType, name: str) -> Rule | None:
        rule = _rule(parent, name)
        return rule if rule is not None and self.category not in ALLOWED[rule] else None

    def selections(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, path: tuple
    ) -> None:
        if selection_set is None:
            return
        key = (id(selection_set), parent.name, path)
        if key in self.seen:
            return  # the same fragment spread twice at one place lands in the same keys
        self.seen.add(key)
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.field(selection, parent, path)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                self.selections(selection.selection_set, inner, path)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                inner = self.schema.get_type(fragment.type_condition.name.value)
                self.selections(fragment.selection_set, inner, path)

    def field(self, node: FieldNode, parent: GraphQLNamedType, path: tuple) -> None:
        name = node.name.value
        here = (*path, (node.alias or node.name).value)
        if (parent.name, name) in CALLER_SCOPED:
            self.caller_scoped = True
        if (parent.name, name) in UNVERSIONED:
            self.versioned = False
        definition = _field(parent, name)
        rule = self.denied(parent, name)
        if rule is not None:
            non_null = definition is not None and isinstance(definition.type, GraphQLNonNull)
            self.denials.setdefault(here, Denial(here, node, MESSAGES[rule], non_null))
            return
        if definition is None:
            return
        for argument in node.arguments or ():
            input_type = get_named_type(definition.args[argument.name.value].type)
            if isinstance(input_type, GraphQLInputObjectType) and restricted_fields(input_type):
                self.arguments.append(RestrictedArgument(here, node, argument, input_type))
        inner = get_named_type(definition.type)
        self.selections(node.selection_set, inner, here)


class _StandIns(Visitor):
    """Replaces each denied field by `__typename` under its response key, everywhere."""

    def __init__(self, type_info: TypeInfo, walk: _Walk) -> None:
        super().__init__()
        self.type_info = type_info
        self.walk = walk

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        parent = self.type_info.get_parent_type()
        if parent is None or self.walk.denied(parent, node.name.value) is None:
            return None
        return FieldNode(alias=node.alias or node.name, name=NameNode(value="__typename"))


CACHED_DECISIONS = 2048
_decisions: OrderedDict[tuple[int, int, str | None, PartyCategory], tuple[Any, Decision | None]]
_decisions = OrderedDict()


def decide(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    category: PartyCategory,
) -> Decision | None:
    """The decision for one operation of a validated document, cached by the document object
    (documents come from one cache, so the same text is the same object; graphql-core's own
    hash of a document walks all of it). None if there is no such operation."""
    key = (id(schema), id(document), operation_name, category)
    cached = _decisions.get(key)
    if cached is not None and cached[0][0] is schema and cached[0][1] is document:
        _decisions.move_to_end(key)
        return cached[1]
    decision = _decide(schema, document, operation_name, category)
    _decisions[key] = ((schema, document), decision)
    if len(_decisions) > CACHED_DECISIONS:
        _decisions.popitem(last=False)
    return decision


def _decide(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    category: PartyCategory,
) -> Decision | None:
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    walk = _Walk(schema, document, category)
    root = schema.get_root_type(operation.operation)
    walk.selections(operation.selection_set, root, ())
    rewritten = document
    if walk.denials:
        type_info = TypeInfo(schema)
        rewritten = visit(document, TypeInfoVisitor(type_info, _StandIns(type_info, walk)))
    return Decision(
        rewritten,
        tuple(walk.denials.values()),
        tuple(walk.arguments),
        walk.caller_scoped,
        walk.versioned,
    )
