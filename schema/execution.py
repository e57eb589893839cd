"""Execution: graphql-core's executor, with the plain parts of a selection compiled.

Why: an uncached page of the typical Supplier query is about 5,000 field executions, and
graphql-core spends most of each on machinery a plain field does not use: a `ResolveInfo` and a
path, Strawberry's argument conversion and extension chain, and half a dozen type checks to find
out how to complete the value. Profiled, that was 83 % of an uncached request.

What is plain: a selection on an object type whose fields are all attributes (Strawberry's
basic fields), `__typename`, or resolvers made lean at build time (`lean_resolvers`: sync, no
arguments), completing to scalars, enums, lists and plain objects again, with no directive but
`@include`/`@skip`. For such a selection the executor builds, once per request, a completion
that reads the attributes and calls the resolvers directly, building a path and an info only
for a resolver, which may use them.

Anything else gives up: a completion that meets an error, an awaitable, a null in a non-null
position, a value a scalar refuses or a list that is not one raises `GiveUp`, and graphql-core
completes that value from the start. So errors, their paths and the partial data around them
are graphql-core's own; what runs twice is reads of the CPL snapshot and idempotent notes
(`SscReads` is a set).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import suppress
from enum import Enum
from functools import partial, reduce
from typing import Any, cast

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    get_named_type,
    get_nullable_type,
)
from graphql.pyutils import Path, Undefined
from strawberry.extensions.field_extension import build_field_extension_resolvers
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

from schema.subscriptions import EventExecutor

Completion = Callable[[Any, Path], Any]
DEFINITION = "strawberry-definition"  # where Strawberry keeps a GraphQL field's own definition
SELECTION_DIRECTIVES = frozenset({"include", "skip"})  # applied while fields are collected


class GiveUp(Exception):
    """A compiled completion met something only graphql-core's completion handles."""


def lean_resolvers(schema: strawberry.Schema) -> None:
    """Swap Strawberry's general resolver wrapper for a direct call where it has nothing to do:
    a sync resolver (or a field's sync extensions) with no arguments. Strawberry's wrapper
    converts arguments and reduces the extension chain on every call; here the chain is
    reduced once. Lean resolvers are marked `lean`, and Strawberry's attribute reads `attribute`
    with the attribute's name, so that the executor may do their work itself."""
    if schema.exception_handlers:  # they turn a resolver's exception into a result: keep them
        return
    info_class = schema.config.info_class
    by_attribute = schema.config.default_resolver is getattr
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for field_def in type_.fields.values():
            field = (field_def.extensions or {}).get(DEFINITION)
            if not isinstance(field, StrawberryField):
                continue
            if by_attribute and field.is_basic_field:  # Strawberry's getattr, as it is
                field_def.resolve.attribute = field.python_name
            elif _may_be_lean(field, field_def):
                field_def.resolve = _lean(field, info_class) or field_def.resolve
                if by_attribute and field.base_resolver is None and _observers(field):
                    field_def.resolve.attribute = field.python_name
                    field_def.resolve.observers = _observers(field)


def _observers(field: StrawberryField) -> tuple[Callable[..., None], ...]:
    """The `observe(context, type name, field name, source)` of each of a field's extensions,
    if every one has it: extensions that only watch a value being read (the SSC's access log),
    which the compiled execution can call itself while it reads the value."""
    observers = tuple(getattr(extension, "observe", None) for extension in field.extensions)
    return cast(tuple[Callable[..., None], ...], observers) if all(observers) else ()


def _may_be_lean(field: StrawberryField, field_def: GraphQLField) -> bool:
    if field.is_basic_field or field.arguments or field_def.args or field.is_async:
        return False
    if field.is_subscription or any(not extension.supports_sync for extension in field.extensions):
        return False
    return field.base_resolver is not None or bool(field.extensions)


def _lean(field: StrawberryField, info_class: type) -> Callable[..., Any] | None:
    """The lean resolver of a field, or None where its resolver has a shape this does not
    call (Strawberry's wrapper stays)."""
    call: Callable[[Any, Any], Any] | None
    if field.base_resolver is None:
        attribute, read = field.python_name, field.default_resolver  # as Strawberry reads it

        def read_attribute(source: Any, info: Any) -> Any:
            return read(source, attribute)

        call = read_attribute
    else:
        call = _direct_call(field.base_resolver)
        if call is None:
            return None
    chain = call
    if field.extensions:  # chained as Strawberry chains them, once instead of per call
        chain = reduce(
            lambda inner, outer: partial(outer, inner), build_field_extension_resolvers(field), call
        )

    def resolve(source: Any, info: GraphQLResolveInfo) -> Any:
        return chain(source, info_class(_raw_info=info, _field=field))

    resolve.lean = True  # type: ignore[attr-defined]  # a marker set on the function at runtime
    return resolve


# A resolver's parameters, each given the source (as `self`, root or parent) or the info, as
# Strawberry gives them; called positionally.
POSITIONAL_CALLS: dict[
    tuple[str, ...], Callable[[Callable[..., Any]], Callable[[Any, Any], Any]]
] = {
    ("source",): lambda func: lambda source, info: func(source),
    ("source", "source"): lambda func: lambda source, info: func(source, source),
    ("source", "info"): lambda func: lambda source, info: func(source, info),
    ("source", "source", "info"): lambda func: lambda source, info: func(source, source, info),
}


def _direct_call(resolver: StrawberryResolver) -> Callable[[Any, Any], Any] | None:
    """A plain function whose every parameter Strawberry fills (`self`, root or parent, info),
    in one of the orders of `POSITIONAL_CALLS`, called directly; None for any other shape."""
    roles = {
        id(parameter): role
        for role, parameter in (
            ("source", resolver.self_parameter),
            ("source", resolver.parent_parameter),
            ("source", resolver.root_parameter),
            ("info", resolver.info_parameter),
        )
        if parameter is not None
    }
    parameters = resolver.signature.parameters.values()
    if not inspect.isfunction(resolver.wrapped_func) or any(
        parameter.kind is not parameter.POSITIONAL_OR_KEYWORD for parameter in parameters
    ):
        return None
    make = POSITIONAL_CALLS.get(tuple(roles.get(id(parameter), "") for parameter in parameters))
    return None if make is None else make(resolver.wrapped_func)


class CompilingExecutor(EventExecutor):
    """graphql-core's executor, completing plain selections with compiled completions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager  # a resolve hook must see every field: none compiled
        self.compiling = manager is None or not manager.middlewares
        self.completions: dict[tuple[GraphQLOutputType, int], tuple[Any, Completion | None]] = {}

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
        completion = self.completion(return_type, field_details_list) if field_level else None
        if completion is not None:
            with suppress(Exception):  # GiveUp or anything a resolver raised: graphql-core's turn
                return completion(result, path)
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def build_per_event_executor(self, payload: Any) -> CompilingExecutor:
        """A subscription event's executor (a copy of this one) compiles afresh: the event's
        field lists are its own, and its completions must not outlive it."""
        executor = cast(CompilingExecutor, super().build_per_event_executor(payload))  # a copy
        executor.completions = {}
        return executor

    def completion(
        self, return_type: GraphQLOutputType, field_details_list: Any
    ) -> Completion | None:
        """The compiled completion of a selection, or None where it is not plain; made once
        per request or subscription event (the selection's field lists are its own)."""
        if not self.compiling:
            return None
        key = (return_type, id(field_details_list))
        known = self.completions.get(key)
        if known is None:  # the list is kept with its completion, so that its id stays its own
            known = (field_details_list, self.compile(return_type, field_details_list))
            self.completions[key] = known
        return known[1]

    def compile(
        self, type_: GraphQLOutputType, field_details_list: Any, nullable: bool = True
    ) -> Completion | None:
        """A non-null type's check is folded into the completion of the type it wraps."""
        if isinstance(type_, GraphQLNonNull):
            return self.compile(type_.of_type, field_details_list, nullable=False)
        if isinstance(type_, GraphQLList):
            items = self.compile(type_.of_type, field_details_list)
            leaves = isinstance(get_named_type(type_), GraphQLLeafType)
            return None if items is None else partial(_complete_list, items, nullable, leaves)
        if isinstance(type_, GraphQLLeafType):
            return _leaf(type_, nullable)
        if isinstance(type_, GraphQLObjectType) and type_.is_type_of is None:
            steps = self.compile_object(type_, field_details_list)
            return None if steps is None else partial(_complete_object, steps, nullable)
        return None  # an interface or union: graphql-core resolves the type

    def compile_object(
        self, type_: GraphQLObjectType, field_details_list: Any
    ) -> list[Step] | None:
        if any(_has_directives(details.node) for details in field_details_list):
            return None  # @stream or @defer on the field itself
        grouped, defer_usages, _ = self.collect_subfields(type_, field_details_list)
        if defer_usages:
            return None
        steps = []
        for name, sub_details in grouped.items():
            step = self.compile_field(type_, name, sub_details)
            if step is None:
                return None
            steps.append(step)
        return steps

    def compile_field(self, parent: GraphQLObjectType, name: str, details: Any) -> Step | None:
        node = details[0].node
        if _has_directives(node) or node.arguments:
            return None
        if node.name.value == "__typename":
            return (name, _TYPENAME, parent.name, None, None)
        field_def = parent.fields.get(node.name.value)
        if field_def is None or field_def.args:
            return None
        attribute = getattr(field_def.resolve, "attribute", None)
        if attribute is None and not getattr(field_def.resolve, "lean", False):
            return None  # graphql-core's: its selection is not compiled for nothing
        completion = self.compile(field_def.type, details)
        if completion is None:
            return None
        leaf = get_nullable_type(field_def.type)  # a list of leaves is no leaf
        if attribute is not None and getattr(field_def.resolve, "observers", None):
            if not isinstance(leaf, GraphQLLeafType):
                return None
            context, field_name = self.context_value, node.name.value
            watched = [
                partial(observe, context, parent.name, field_name)
                for observe in field_def.resolve.observers
            ]
            return (name, _OBSERVED, (attribute, watched), completion, None)
        if attribute is not None:
            if leaf is GraphQLString or leaf is GraphQLID:  # a str is its own output
                return (name, _STRING, attribute, completion, None)
            if isinstance(leaf, GraphQLLeafType):
                return (name, _VALUE, attribute, completion, None)  # no path below a value
            return (name, _ATTRIBUTE, attribute, completion, parent.name)
        nodes = [item.node for item in details]
        call = partial(self.call_lean, field_def, nodes, parent, name)
        return (name, _RESOLVED, call, completion, None)

    def call_lean(
        self,
        field_def: GraphQLField,
        nodes: list[Any],
        parent: GraphQLObjectType,
        name: str,
        source: Any,
        path: Path,
    ) -> tuple[Any, Path]:
        field_path = Path(path, name, parent.name)
        value = field_def.resolve(
            source, self.build_resolve_info(field_def, nodes, parent, field_path)
        )  # type: ignore[misc]  # Optional in graphql-core; Strawberry sets every field's
        if self.is_awaitable(value):
            getattr(value, "close", lambda: None)()  # a coroutine: never awaited, so closed
            raise GiveUp
        return value, field_path


# A step of an object's completion: (response name, kind, how, completion, parent type name).
_STRING, _VALUE, _OBSERVED, _ATTRIBUTE, _RESOLVED, _TYPENAME = range(6)
Step = tuple[str, int, Any, Any, str | None]


def _null(nullable: bool) -> None:
    """A null, where the type allows one; else graphql-core's error to raise."""
    if nullable:
        return None
    raise GiveUp


def _complete_object(steps: list[Step], nullable: bool, value: Any, path: Path) -> Any:
    if value is None:
        return _null(nullable)
    if value is Undefined or isinstance(value, Exception):
        raise GiveUp
    out = {}
    for name, kind, how, completion, typename in steps:
        if kind is _STRING:
            attribute = getattr(value, how)
            out[name] = attribute if attribute.__class__ is str else completion(attribute, path)
        elif kind is _VALUE:
            out[name] = completion(getattr(value, how), path)
        elif kind is _RESOLVED:
            resolved, field_path = how(value, path)
            out[name] = completion(resolved, field_path)
        elif kind is _OBSERVED:
            attribute, watched = how
            for observe in watched:
                observe(value)
            out[name] = completion(getattr(value, attribute), path)
        elif kind is _ATTRIBUTE:
            out[name] = completion(getattr(value, how), Path(path, name, typename))
        else:
            out[name] = how
    return out


def _complete_list(items: Completion, nullable: bool, leaves: bool, value: Any, path: Path) -> Any:
    if value is None:
        return _null(nullable)
    if not isinstance(value, list | tuple):
        raise GiveUp
    if leaves:  # a leaf makes no use of its path
        return [items(item, path) for item in value]
    return [items(item, Path(path, index, None)) for index, item in enumerate(value)]


def _leaf(type_: GraphQLLeafType, nullable: bool) -> Completion:
    """A scalar's or enum's completion. A string is its own String or ID output, and an enum
    member's name is looked up once a request rather than searched for each value."""
    coerce = type_.coerce_output_value
    strings = type_ is GraphQLString or type_ is GraphQLID
    names: dict[Enum, Any] | None = {} if isinstance(type_, GraphQLEnumType) else None

    def complete(value: Any, path: Path) -> Any:
        if strings and value.__class__ is str:
            return value
        if value is None:
            return _null(nullable)
        if value is Undefined or isinstance(value, Exception) or inspect.isawaitable(value):
            raise GiveUp  # graphql-core awaits an awaitable; a scalar could print one
        if names is not None and isinstance(value, Enum):
            name = names.get(value)
            if name is None:
                name = names[value] = _valid(coerce(value))
            return name
        return _valid(coerce(value))

    return complete


def _valid(coerced: Any) -> Any:
    if coerced is None or coerced is Undefined:
        raise GiveUp
    return coerced


def _has_directives(node: Any) -> bool:
    return any(d.name.value not in SELECTION_DIRECTIVES for d in node.directives or ())
