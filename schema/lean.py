"""Lean resolvers: Strawberry's general resolver wrapper swapped, at build time, for a direct
call where it has nothing to do, so that the compiled execution (`schema.execution`) may call a
field's resolver itself.

Strawberry's wrapper converts arguments and reduces the extension chain on every call; for a
sync resolver (or a field's sync extensions) with no arguments, the chain is reduced once here.
A lean resolver is marked `lean`, and carries what the compiled execution calls instead of it:
`chain(source, info)` with a Strawberry `Info` made once a field, and for a field whose
extensions only watch a value being read (the SSC's access log), `observers` and `direct`, the
resolver without them. Strawberry's own attribute read is marked `attribute`. A root field's
resolver keeps Strawberry's wrapper, marked with `call` and `arguments` (`_keyword_call`): the
plans of `schema.direct` call its function themselves where Strawberry would convert nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial, reduce
from typing import Any, TypeVar, cast

import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLResolveInfo
from strawberry.extensions.field_extension import build_field_extension_resolvers
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

from schema.completions import Observer

DEFINITION = "strawberry-definition"  # where Strawberry keeps a GraphQL field's own definition
F = TypeVar("F", bound=Callable[..., Any])


def view_only(resolver: F) -> F:
    """Marks a resolver whose answer is a function of its source (a row of the CPL, or an
    object the request made) and of the caller's view of the CPL snapshot alone: no
    principal, no argument, no clock, no database, nothing of its `Info` but the context's
    loaders. The compiled execution then compiles its selection once for every request of a
    document, and reuses the completed answer of a view's row for every caller of the same
    view until the data revision moves (`schema.completions`). A resolver that is not marked
    is compiled for each request and called every time: a forgotten mark costs speed, never
    a wrong answer."""
    resolver.view_only = True  # type: ignore[attr-defined]  # a marker set on the function
    return resolver


def lean_resolvers(schema: strawberry.Schema) -> None:
    """Mark attribute reads and swap in lean resolvers across the schema's object types."""
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
            elif _may_be_lean(field, field_def) and (lean := _lean(field, info_class)):
                field_def.resolve = lean
                if by_attribute and field.base_resolver is None and hasattr(lean, "observers"):
                    lean.attribute = field.python_name  # type: ignore[attr-defined]  # a marker
            elif type_ is schema._schema.query_type and field_def.resolve is not None:
                _keyword_call(field, field_def, schema, info_class)


def _observers(field: StrawberryField) -> tuple[Observer, ...]:
    """The `observe(context, type name, field name, source)` of each of a field's extensions,
    if every one has it: extensions that only watch a value being read (the SSC's access log),
    which the compiled execution can call itself while it reads the value."""
    observers = tuple(getattr(extension, "observe", None) for extension in field.extensions)
    return cast(tuple[Observer, ...], observers) if all(observers) else ()


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
    view = True
    if field.base_resolver is None:
        attribute, read = field.python_name, field.default_resolver  # as Strawberry reads it

        def read_attribute(source: Any, info: Any) -> Any:
            return read(source, attribute)

        call = read_attribute
    else:
        call = _direct_call(field.base_resolver)
        if call is None:
            return None
        view = getattr(field.base_resolver.wrapped_func, "view_only", False)
    # An extension that does more than watch the value (a permission check, say) may make the
    # answer depend on the caller: the field is then not the view's alone, whatever its mark.
    view = view and all(hasattr(extension, "observe") for extension in field.extensions)
    chain = call
    if field.extensions:  # chained as Strawberry chains them, once instead of per call
        chain = reduce(
            lambda inner, outer: partial(outer, inner), build_field_extension_resolvers(field), call
        )

    def resolve(source: Any, info: GraphQLResolveInfo) -> Any:
        return chain(source, info_class(_raw_info=info, _field=field))

    resolve.lean = True  # type: ignore[attr-defined]  # markers set on the function at runtime
    resolve.chain = chain  # type: ignore[attr-defined]
    resolve.info = partial(info_class, _field=field)  # type: ignore[attr-defined]
    resolve.view_only = view  # type: ignore[attr-defined]
    if field.extensions and _observers(field):
        resolve.observers = _observers(field)  # type: ignore[attr-defined]
        resolve.direct = call  # type: ignore[attr-defined]
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


# Strawberry's scalars whose values it passes to a resolver as graphql-core coerced them.
PLAIN_SCALARS = (int, str, bool, float, strawberry.ID)


def _keyword_call(
    field: StrawberryField, field_def: GraphQLField, schema: strawberry.Schema, info_class: type
) -> None:
    """Mark a root field's resolver with `call(source, raw_info, arguments)`: its function
    called as Strawberry's wrapper calls it (`self`, root or parent, info filled in), with the
    arguments by their Python names, and `arguments`, GraphQL name -> (Python name, whether
    Strawberry passes a value of it on as it is: a built-in scalar); a null is passed on as it
    is for any argument. The plans of `schema.direct` call it where every value is one of those
    and Strawberry's wrapper otherwise. Not for a field with extensions (they may reshape the
    arguments) or a `Maybe` argument (Strawberry wraps its value)."""
    resolver = field.base_resolver
    if resolver is None or field.extensions or field.is_subscription:
        return
    if type(field).get_result is not StrawberryField.get_result:
        return  # a field of its own kind: it calls its resolver its own way
    if not inspect.isfunction(resolver.wrapped_func):
        return
    arguments = {}
    for argument in field.arguments:
        type_ = argument.type
        if isinstance(type_, StrawberryOptional):
            if type(type_) is not StrawberryOptional:  # a Maybe: its value wrapped
                return
            type_ = type_.of_type
        name = schema.config.name_converter.from_argument(argument)
        arguments[name] = (argument.python_name, type_ in PLAIN_SCALARS)
    takes_self = resolver.self_parameter is not None
    sources = [p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p]
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    function = resolver.wrapped_func

    def call(source: Any, raw_info: GraphQLResolveInfo, kwargs: dict[str, Any]) -> Any:
        kwargs.update(dict.fromkeys(sources, source))
        if info_name is not None:
            kwargs[info_name] = info_class(_raw_info=raw_info, _field=field)
        return function(source, **kwargs) if takes_self else function(**kwargs)

    field_def.resolve.call = call  # type: ignore[union-attr]  # markers set on the function
    field_def.resolve.arguments = arguments  # type: ignore[union-attr]
