"""The policy decided once per document: which selections a caller's category may not read and
which arguments carry restricted input fields, before anything executes.

Like Apollo Router's and Hot Chocolate's authorisation, one pass over the validated document
replaces per-row permission hooks. For a (document, operation, category) it yields a
`Decision`, cached: a copy of the document in which every denied field is replaced by
`__typename` under an alias of its own (so execution never resolves it, and graphql-core
itself finds every place it lands, through fragments and type conditions alike), what each
stand-in stands for (the client's response key, the message) and the response keys under which
stand-ins can be, and the arguments whose values must be checked against the restricted input
fields. The pass walks each selection set once, so its work is linear in the document; it
runs after the depth, alias and cost limits, never on a document they refuse.
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
    Visitor,
    get_named_type,
    get_operation_ast,
    visit,
)

from permissions.policy import (
    ALLOWED,
    CALLER_SCOPED,
    FLEET_SCOPED,
    UNVERSIONED,
    Rule,
    rule_for,
)
from permissions.principal import PartyCategory

MESSAGES: dict[Rule, str] = {
    Rule.SSC_ONLY: "Forbidden: this field is readable by the SSC only.",
    Rule.AUDITORS: "Forbidden: this field is for SECAS and the SSC only.",
    Rule.DEVICE_WRITERS: "Forbidden: only a device's own Manufacturer, or SECAS, may change it.",
    Rule.OWN_FLEET: "Forbidden: a stored fleet is a Supplier's own, read and replaced by it only.",
}


@dataclass(frozen=True)
class Denial:
    """A field selection the caller may not read: the response key it asked for and why."""

    key: str  # the response key the client chose, which its stand-in's alias replaces
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
    stand_ins: dict[str, Denial]  # by the stand-in's alias, in document order; never changed
    leads: frozenset[str]  # response keys of the fields under which a stand-in can be
    arguments: tuple[RestrictedArgument, ...]
    caller_scoped: bool  # the answer depends on who asks, not only on what they may read
    versioned: bool  # the answer changes only with the data revision, so it may be cached
    # It reads the caller's own stored fleet (allowed, not a stand-in): its cache key needs the
    # fleet's own revision too.
    fleet_scoped: bool = False


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


STAND_IN = "_denied_"  # the stand-ins' alias prefix, lengthened if the document uses it


class _Walk:
    """One pass over an operation: each selection set is walked once for its parent type,
    however many times and wherever its fragment is spread, so the work is linear in the
    document (walked once per response path, 18 levels of a fragment spread under two aliases
    took 2^18 walks). What depends on where a selection lands is left to the answer: a denied
    field is replaced in place, once, and the answer says where its stand-in turned up."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, category: PartyCategory):
        self.schema = schema
        self.category = category
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.denied_nodes: dict[int, Denial] = {}  # by the id of the denied field's node
        self.leads: set[str] = set()
        self.arguments: list[RestrictedArgument] = []
        self.caller_scoped = False
        self.versioned = True
        self.fleet_scoped = False
        self.seen: dict[tuple[int, str], bool] = {}

    def denied(self, parent: GraphQLNamedType, name: str) -> Rule | None:
        rule = _rule(parent, name)
        return rule if rule is not None and self.category not in ALLOWED[rule] else None

    def selections(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, path: tuple
    ) -> bool:
        """Walk a selection set once for its parent type; whether a stand-in is below it.
        `path` is where it is first reached, for the errors of restricted arguments."""
        if selection_set is None:
            return False
        key = (id(selection_set), parent.name)
        if key in self.seen:
            return self.seen[key]  # fragments are acyclic (validated): always set by now
        found = False
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found = self.field(selection, parent, path) or found
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                assert inner is not None  # validated: a type condition names a schema type
                found = self.selections(selection.selection_set, inner, path) or found
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                inner = self.schema.get_type(fragment.type_condition.name.value)
                assert inner is not None  # validated: a type condition names a schema type
                found = self.selections(fragment.selection_set, inner, path) or found
        self.seen[key] = found
        return found

    def field(self, node: FieldNode, parent: GraphQLNamedType, path: tuple) -> bool:
        """Note a field; whether it is, or holds, a stand-in."""
        name = node.name.value
        response_key = (node.alias or node.name).value
        if (parent.name, name) in CALLER_SCOPED:
            self.caller_scoped = True
        if (parent.name, name) in UNVERSIONED:
            self.versioned = False
        definition = _field(parent, name)
        rule = self.denied(parent, name)
        if rule is None and (parent.name, name) in FLEET_SCOPED:
            self.fleet_scoped = True
        if rule is not None:
            # A selection set has one parent type, so a node is denied wherever it lands.
            non_null = definition is not None and isinstance(definition.type, GraphQLNonNull)
            self.denied_nodes[id(node)] = Denial(response_key, node, MESSAGES[rule], non_null)
            return True
        if definition is None:
            return False
        here = (*path, response_key)
        for argument in node.arguments or ():
            input_type = get_named_type(definition.args[argument.name.value].type)
            if isinstance(input_type, GraphQLInputObjectType) and restricted_fields(input_type):
                self.arguments.append(RestrictedArgument(here, node, argument, input_type))
        if not self.selections(node.selection_set, get_named_type(definition.type), here):
            return False
        self.leads.add(response_key)
        return True

    def aliases(self, document: DocumentNode) -> dict[int, str]:
        """A unique alias for each stand-in, under a prefix no response key of the document
        starts with, so that no client's alias is ever taken for a stand-in."""
        keys = _response_keys(document)
        prefix = STAND_IN
        while any(key.startswith(prefix) for key in keys):
            prefix = f"_{prefix}"
        return {node: f"{prefix}{n}" for n, node in enumerate(self.denied_nodes)}


def _response_keys(document: DocumentNode) -> set[str]:
    """Every response key written in the document, walked or not (introspection's too)."""
    keys: set[str] = set()
    pending = [d.selection_set for d in document.definitions if hasattr(d, "selection_set")]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                keys.add((selection.alias or selection.name).value)
            inner = getattr(selection, "selection_set", None)  # a spread has none
            if inner is not None:
                pending.append(inner)
    return keys


class _StandIns(Visitor):
    """Replaces each denied field by `__typename` under its stand-in's alias."""

    def __init__(self, aliases: dict[int, str]) -> None:
        super().__init__()
        self.aliases = aliases

    def enter_field(self, node: FieldNode, *_: Any) -> Any:
        alias = self.aliases.get(id(node))
        if alias is None:
            return None
        # Its directives stay: a denied field under `@skip(if: true)` is skipped, as for the SSC.
        return FieldNode(
            alias=NameNode(value=alias),
            name=NameNode(value="__typename"),
            directives=node.directives,
        )


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
    assert root is not None  # validated: the schema has the operation's root type
    walk.selections(operation.selection_set, root, ())
    rewritten, stand_ins = document, {}
    if walk.denied_nodes:
        aliases = walk.aliases(document)
        rewritten = visit(document, _StandIns(aliases))
        stand_ins = {aliases[node]: denial for node, denial in walk.denied_nodes.items()}
    return Decision(
        rewritten,
        stand_ins,
        frozenset(walk.leads),
        tuple(walk.arguments),
        walk.caller_scoped,
        walk.versioned,
        walk.fleet_scoped,
    )
