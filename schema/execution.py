"""Execution: graphql-core's executor, with the plain parts of a selection compiled.

Why: an uncached page of the typical Supplier query is about 5,000 field executions, and
graphql-core spends most of each on machinery a plain field does not use: a `ResolveInfo` and a
path, Strawberry's argument conversion and extension chain, and half a dozen type checks to find
out how to complete the value. Profiled, that was 83 % of an uncached request.

What is plain: a selection on an object type whose fields are all attributes (Strawberry's
basic fields), `__typename`, or resolvers made lean at build time (`schema.lean`: sync, no
arguments), completing to scalars, enums, lists and plain objects again, with no directive but
`@include`/`@skip`. For such a selection the executor builds, once per request, a completion
(`schema.completions`) that reads the attributes and calls the resolvers directly, with one
`Info` a field, and reuses the answers of the view's rows where the selection reads nothing else.

Anything else gives up: a completion that meets an error, an awaitable, a null in a non-null
position, a value a scalar refuses or a list that is not one raises `GiveUp`, and graphql-core
completes that value from the start. So errors, their paths and the partial data around them
are graphql-core's own; what runs twice is reads of the CPL snapshot and idempotent notes
(`SscReads` is a set).
"""

from __future__ import annotations

import functools
from contextlib import suppress
from functools import partial
from operator import attrgetter
from typing import Any, cast

from graphql import (
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    get_nullable_type,
)
from graphql.pyutils import Path

from schema.completions import (
    OBSERVED,
    RESOLVED,
    STRING,
    TYPENAME,
    VALUE,
    Compiled,
    RequestInfo,
    Run,
    Step,
    leaf_completion,
    list_completion,
    object_completion,
    of_no_request,
    resolved,
)
from schema.direct import learn
from schema.subscriptions import EventExecutor

SELECTION_DIRECTIVES = frozenset({"include", "skip"})  # applied while fields are collected
Field = tuple[Step, Any, bool]  # a field's step, its part of the object's shape, observed
Known = tuple[Any, Compiled | None, Run]  # a selection's field lists, completion, run
# Selections compiled once for every request of their document (`planned`); dropped all at
# once past the bound, so that a key's node ids always belong to the nodes its entry keeps.
PLANS: dict[tuple[Any, ...], tuple[tuple[Any, ...], Compiled, Run]] = {}
MAX_PLANS = 4_096
CONDITIONAL: dict[int, tuple[Any, bool]] = {}  # by operation node (kept): has @include/@skip


class CompilingExecutor(EventExecutor):
    """graphql-core's executor, completing plain selections with compiled completions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager  # a resolve hook must see every field: none compiled
        self.compiling = manager is None or not manager.middlewares
        self.completions: dict[tuple[GraphQLOutputType, int], Known] = {}
        self.run = Run(self.context_value)
        self.root_fields: Any = None  # the operation's root fields, as collected
        self.roots: dict[str, Known] = {}  # the root fields' compiled completions, by key

    def execute_collected_root_fields(
        self,
        root_type: GraphQLObjectType,
        root_value: Any,
        grouped_field_set: Any,
        serially: bool,
        new_defer_usages: Any,
    ) -> Any:
        if not new_defer_usages:
            self.root_fields = grouped_field_set
        return super().execute_collected_root_fields(
            root_type, root_value, grouped_field_set, serially, new_defer_usages
        )

    def build_response(self, data: dict[str, Any] | None) -> Any:
        """A query answered without an error teaches `schema.direct` its plan."""
        if data is not None and not self.collected_errors.errors and self.compiling:
            learn(self)
        return super().build_response(data)

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        # Tried once a field, at its own type: graphql-core calls back here for the types its
        # type wraps and for each item of a list, which must not try the same value again.
        field_level = return_type is info.return_type
        known = self.completion(return_type, field_details_list) if field_level else None
        if known is not None and known[1] is not None:
            run = known[2]
            run.bind(self.context_value)
            try:
                with suppress(Exception):  # GiveUp or a resolver's error: graphql-core's turn
                    completed = known[1].completion(result)
                    if path.prev is None:  # a root field's value, completed: a plan may use it
                        self.roots[path.key] = known  # type: ignore[index]  # a root key is a str
                    return completed
            finally:
                run.bind(None)  # a selection kept for later requests keeps nothing of this one
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def build_per_event_executor(self, payload: Any) -> CompilingExecutor:
        """A subscription event's executor (a copy of this one) compiles afresh: the event's
        field lists are its own, and its completions must not outlive it."""
        executor = cast(CompilingExecutor, super().build_per_event_executor(payload))  # a copy
        executor.completions = {}
        executor.run = Run(executor.context_value)
        return executor

    def completion(self, return_type: GraphQLOutputType, field_details_list: Any) -> Known | None:
        """The compiled completion of a selection (None where it is not plain) and the run it
        is bound to; looked up once per request or subscription event (the selection's field
        lists are its own, kept with it so that their id stays theirs)."""
        if not self.compiling:
            return None
        key = (return_type, id(field_details_list))
        known = self.completions.get(key)
        if known is None:
            compiled, run = self.planned(return_type, field_details_list)
            known = self.completions[key] = (field_details_list, compiled, run)
        return known

    def planned(self, return_type: GraphQLOutputType, details: Any) -> tuple[Compiled | None, Run]:
        """A selection compiled by an earlier request of the same document, where its answer
        reads rows and the view alone (so nothing of that request is in it but what `Run`
        binds anew); else compiled for this request. Keyed by the selection's field nodes and
        the definitions its fragment spreads may name (a policy's copy of a document shares
        the nodes it left alone, but not its fragments), all of which the entry keeps alive,
        so no other node can take their ids."""
        nodes = (*self.definitions, *(item.node for item in details))
        key = (return_type, *map(id, nodes))
        found = None if self.conditional else PLANS.get(key)
        if found is not None:
            return found[1], found[2]
        run, self.run = self.run, Run(self.context_value)
        try:
            compiled = self.compile(return_type, details)
            planned = self.run
        finally:
            self.run = run
        if compiled is None or compiled.shape is None or self.conditional:
            return compiled, planned
        if len(PLANS) >= MAX_PLANS:
            PLANS.clear()
        PLANS[key] = (nodes, compiled, planned)
        return compiled, planned

    @functools.cached_property
    def definitions(self) -> tuple[Any, ...]:
        """The operation and its document's fragment definitions: what fields are collected
        from, besides a selection's own nodes."""
        return (self.operation, *(details.definition for details in self.fragments.values()))

    @functools.cached_property
    def conditional(self) -> bool:
        """Whether the operation's selections depend on its variables (`@include`, `@skip`):
        its compiled selections are then its own. Walked once per operation node."""
        found = CONDITIONAL.get(id(self.operation))
        if found is None or found[0] is not self.operation:
            if len(CONDITIONAL) >= MAX_PLANS:
                CONDITIONAL.clear()
            found = CONDITIONAL[id(self.operation)] = (
                self.operation,
                _has_conditions(self.operation, self.fragments),
            )
        return found[1]

    def compile(
        self, type_: GraphQLOutputType, field_details_list: Any, nullable: bool = True
    ) -> Compiled | None:
        """A non-null type's check is folded into the completion of the type it wraps."""
        if isinstance(type_, GraphQLNonNull):
            return self.compile(type_.of_type, field_details_list, nullable=False)
        if isinstance(type_, GraphQLList):
            items = self.compile(type_.of_type, field_details_list)
            if items is None:
                return None
            shape = None if items.shape is None else ("[]", nullable, items.shape)
            return Compiled(list_completion(items.completion, nullable), shape, items.observed)
        if isinstance(type_, GraphQLLeafType):
            return Compiled(leaf_completion(type_, nullable), (type_.name, nullable), False)
        if isinstance(type_, GraphQLObjectType) and type_.is_type_of is None:
            return self.compile_object(type_, field_details_list, nullable)
        return None  # an interface or union: graphql-core resolves the type

    def compile_object(
        self, type_: GraphQLObjectType, field_details_list: Any, nullable: bool
    ) -> Compiled | None:
        """The object's completion. It reuses answers where its shape reads the row and the
        view alone and has a resolver to call (for attributes alone, a look-up costs more
        than reading them)."""
        if any(_has_directives(details.node) for details in field_details_list):
            return None  # @stream or @defer on the field itself
        grouped, defer_usages, _ = self.collect_subfields(type_, field_details_list)
        if defer_usages:
            return None
        fields = []
        for name, sub_details in grouped.items():
            field = self.compile_field(type_, name, sub_details)
            if field is None:
                return None
            fields.append(field)
        steps = [step for step, _, _ in fields]
        parts = tuple(part for _, part, _ in fields)
        shape = (type_.name, nullable, parts) if None not in parts else None
        related = any(step[1] is RESOLVED for step in steps)
        observed = any(watched for _, _, watched in fields)
        completion = object_completion(self.run, steps, nullable, related and shape, observed)
        return Compiled(completion, shape, observed)

    def compile_field(self, parent: GraphQLObjectType, name: str, details: Any) -> Field | None:
        node = details[0].node
        if _has_directives(node) or node.arguments:
            return None
        field_name = node.name.value
        if field_name == "__typename":
            return (name, TYPENAME, parent.name, None), (name, field_name, ()), False
        field_def = parent.fields.get(field_name)
        if field_def is None or field_def.args:
            return None
        resolve = field_def.resolve
        attribute = getattr(resolve, "attribute", None)
        if attribute is None and not getattr(resolve, "lean", False):
            return None  # graphql-core's: its selection is not compiled for nothing
        value = self.compile(field_def.type, details)
        if value is None:
            return None
        view_only = attribute is not None or getattr(resolve, "view_only", False)
        part = (name, field_name, value.shape) if view_only and value.shape is not None else None
        observers = getattr(resolve, "observers", None)
        info = None
        if attribute is None or observers:
            nodes = [item.node for item in details]
            field_path = Path(None, name, parent.name)  # the field's, not any one object's
            raw = of_no_request(self.build_resolve_info(field_def, nodes, parent, field_path))
            info = resolve.info(_raw_info=RequestInfo(raw, self.run))
        if observers:
            if not isinstance(get_nullable_type(field_def.type), GraphQLLeafType):
                return None
            read = attrgetter(attribute) if attribute else partial(resolved, resolve.direct, info)
            watched = tuple((observe, parent.name, field_name) for observe in observers)
            return (name, OBSERVED, (read, watched), value.completion), part, True
        if attribute is not None:
            leaf = get_nullable_type(field_def.type)  # a list of leaves is no leaf
            kind = STRING if leaf is GraphQLString or leaf is GraphQLID else VALUE
            return (name, kind, attribute, value.completion), part, value.observed
        return (name, RESOLVED, (resolve.chain, info), value.completion), part, value.observed


def _has_directives(node: Any) -> bool:
    return any(d.name.value not in SELECTION_DIRECTIVES for d in node.directives or ())


def _has_conditions(operation: Any, fragments: dict[str, Any]) -> bool:
    """Whether any selection of the operation or its fragments has `@include` or `@skip`, or
    a fragment takes arguments."""
    if any(details.variable_signatures for details in fragments.values()):
        return True  # a fragment with arguments (graphql-core's experimental ones)
    pending = [operation.selection_set, *(f.definition.selection_set for f in fragments.values())]
    while pending:
        selection_set = pending.pop()
        for selection in selection_set.selections if selection_set else ():
            if any(d.name.value in SELECTION_DIRECTIVES for d in selection.directives or ()):
                return True
            pending.append(getattr(selection, "selection_set", None))
    return False
