"""Limits on what one document may ask for: depth, aliases and cost, in time linear in its size.

Strawberry's `QueryDepthLimiter` and `MaxAliasesLimiter` walk a fragment again at every spread
of it, so a document of forty fragments that each spread the next twice takes 2^40 steps to
check: one 1.6 KB request pinned the server for good. Here every fragment is measured once and
its measure reused at each spread; a spread still counts as often as it is written, so the bomb
measures at its true, expanded size and is refused, in milliseconds.

The measures run after the standard rules have passed (so every fragment exists, none is
cyclic and every field is in the schema) and before anything executes, over HTTP and WebSocket
alike. Depth and aliases depend on the document only and are cached with it; the cost depends
on the page sizes in the variables and is measured for each request, still in one pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from strawberry.extensions import SchemaExtension

from config.settings import Settings

LIST_FACTOR = 5  # a list without a page size (a device's firmware) is priced at five items
MAX_PAGE = 500  # `first` beyond this is served as 500 (schema.query.page_size)
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


@dataclass(frozen=True)
class Shape:
    """What a selection set asks for, whatever variables come with it."""

    depth: int
    aliases: int


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_cost: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.max_query_depth, settings.max_aliases, settings.max_query_cost)


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _parts(
    selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
) -> Iterator[FieldNode | tuple[SelectionSetNode, str | None]]:
    """Each field of a selection set, and each fragment in it (inline or spread, opened once)
    with the name of the type it applies to (None: the enclosing type)."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            yield selection.selection_set, condition.name.value if condition else None
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            yield fragment.selection_set, fragment.type_condition.name.value


def measure_shape(document: DocumentNode, operation: OperationDefinitionNode) -> Shape:
    """Depth (introspection fields not counted, as GraphiQL's own query is deep) and aliases
    of the operation as executed, each fragment measured once."""
    fragments = _fragments(document)
    memo: dict[int, Shape] = {}

    def of(selection_set: SelectionSetNode | None) -> Shape:
        if selection_set is None:
            return Shape(0, 0)
        key = id(selection_set)
        if key in memo:
            return memo[key]
        depth = aliases = 0
        for part in _parts(selection_set, fragments):
            if isinstance(part, FieldNode):
                inner = of(part.selection_set)
                aliases += inner.aliases + (part.alias is not None)
                if not part.name.value.startswith("__") and part.selection_set:
                    depth = max(depth, 1 + inner.depth)
            else:
                inner = of(part[0])
                depth, aliases = max(depth, inner.depth), aliases + inner.aliases
        memo[key] = Shape(depth, aliases)
        return memo[key]

    return of(operation.selection_set)


def _unwrap(type_: GraphQLOutputType) -> tuple[bool, GraphQLNamedType]:
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    return isinstance(inner, GraphQLList), get_named_type(type_)


PAGE_ARGUMENTS = ("first", "last")  # a page's size, counted alike: the larger when both
DEFAULT_PAGE = 50  # a paged field's page when neither is given (schema.query.DEFAULT_PAGE)


def _page_size(field: FieldNode, variables: dict[str, Any], default: int | None) -> int | None:
    """The rows a paged field may return: its `first` or `last`, capped at 500 as served, and
    never below 0 (a negative size is refused when the field runs, and must not lower the cost
    of the rest of the document meanwhile); its default when neither is given."""
    sizes = []
    for argument in field.arguments or ():
        if argument.name.value not in PAGE_ARGUMENTS:
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            sizes.append(int(value.value))
        elif isinstance(value, VariableNode):
            given = variables.get(value.name.value)
            if isinstance(given, int):
                sizes.append(given)
    return max(0, min(max(sizes), MAX_PAGE)) if sizes else default


def measure_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any],
) -> int:
    """Fields the operation may resolve: each field costs one, times the size of every list
    above it (the page size of a paged connection, else `LIST_FACTOR`)."""
    fragments = _fragments(document)
    memo: dict[tuple[int, str, int | None], int] = {}

    def of(selection_set: SelectionSetNode | None, parent: GraphQLNamedType, page: int | None):
        if selection_set is None:
            return 0
        key = (id(selection_set), parent.name, page)
        if key in memo:
            return memo[key]
        total = 0
        for part in _parts(selection_set, fragments):
            if not isinstance(part, FieldNode):
                inner_set, condition = part
                narrowed = schema.get_type(condition) if condition else parent
                assert narrowed is not None  # validated: a type condition names a schema type
                total += of(inner_set, narrowed, page)
                continue
            definition = _field_definition(schema, parent, part.name.value)
            is_list, named = _unwrap(definition.type)
            paged = "first" in definition.args
            default = definition.args["first"].default_value if paged else None
            default = default if isinstance(default, int) else DEFAULT_PAGE
            child_page = _page_size(part, variables, default) if paged else None
            factor = (page or LIST_FACTOR) if is_list else 1
            inner = of(part.selection_set, named, child_page) if part.selection_set else 0
            total += factor * (1 + inner)
        memo[key] = total
        return total

    root = schema.get_root_type(operation.operation)
    return of(operation.selection_set, root, None) if root else 0


def _field_definition(schema: GraphQLSchema, parent: GraphQLNamedType, name: str) -> GraphQLField:
    """The definition of a field the standard rules have already found in the schema."""
    if name == "__typename":
        return TypeNameMetaFieldDef
    if name == "__schema":
        return SchemaMetaFieldDef
    if name == "__type":
        return TypeMetaFieldDef
    return parent.fields[name]  # type: ignore[attr-defined]  # validated: parent has fields


class _Same(int):
    """A document as a cache key by identity: documents come from one cache, so the same text
    is the same object, and graphql-core's own hash of a document walks all of it (9 µs for a
    typical query, on every request). The key is the document's id, an int (hashed and
    compared as one, at C speed), holding the document: while a cache holds the key, the
    document lives, so no other document can have its id meanwhile."""

    document: DocumentNode

    def __new__(cls, document: DocumentNode) -> _Same:
        same = super().__new__(cls, id(document))
        same.document = document
        return same


@lru_cache(maxsize=256)
def _shape(same: _Same, operation_name: str | None) -> Shape | None:
    operation = get_operation_ast(same.document, operation_name)
    return measure_shape(same.document, operation) if operation else None


@lru_cache(maxsize=1024)
def _page_variables(same: _Same) -> tuple[str, ...]:
    """The variables the document's page sizes (`first`, `last`) are given by: all the cost
    depends on besides the document."""
    names: set[str] = set()
    pending = [d.selection_set for d in same.document.definitions if hasattr(d, "selection_set")]
    while pending:
        for selection in pending.pop().selections:
            for argument in getattr(selection, "arguments", None) or ():
                if argument.name.value in PAGE_ARGUMENTS and isinstance(
                    argument.value, VariableNode
                ):
                    names.add(argument.value.name.value)
            if (inner := getattr(selection, "selection_set", None)) is not None:
                pending.append(inner)
    return tuple(sorted(names))


@lru_cache(maxsize=1024)
def _cost(
    schema: GraphQLSchema, same: _Same, operation_name: str | None, pages: tuple[int | None, ...]
) -> int:
    """The cost of an operation for the page sizes its variables give (`_page_variables`'
    order): measured once per such combination, not on every request (a typical page cost
    90 µs to measure, on each cache hit too)."""
    operation = get_operation_ast(same.document, operation_name)
    variables = dict(zip(_page_variables(same), pages, strict=True))
    return measure_cost(schema, same.document, operation, variables) if operation else 0


@lru_cache(maxsize=1024)
def _passing(
    schema: GraphQLSchema, same: _Same, operation_name: str | None, max_cost: int
) -> list[tuple[int | None, ...]]:
    """Page sizes (`_page_variables`' order) known to keep an operation within `max_cost`, at
    most eight, none within another. A cost only grows with a page size, so sizes within a
    passing set (`_within`) pass unmeasured; `check` tries the largest sizes first, so a
    document that passes at those is measured once, whatever sizes follow."""
    return []


def _within(pages: tuple[int | None, ...], known: tuple[int | None, ...]) -> bool:
    """Each size at most the known one, and given where it is given (an absent size is the
    field's default, which may be any size)."""
    return all(
        size is bound is None or (size is not None and bound is not None and size <= bound)
        for size, bound in zip(pages, known, strict=True)
    )


MAX_JSON_DEPTH = 64  # of a request's variables and extensions; no input type nests deeper


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether a decoded JSON value nests more than `limit` arrays or objects deep, found
    without recursion (a hostile body nests thousands deep, and every later walk of it,
    coercion, the cache key, the Unicode check, recurses)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return True
        stack.extend(
            (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
        )
    return False


def invalid_unicode(value: Any, path: str = "") -> str | None:
    """The path of the first string that is not valid Unicode (a lone surrogate, which JSON's
    `\\ud800` escape can carry): such a string cannot be stored, compared or sent on."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "value"
        return None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = invalid_unicode(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def refuse(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": VALIDATION_FAILED})


def check(
    limits: Limits,
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> list[GraphQLError]:
    """The errors that refuse this operation before it runs; empty when it may run."""
    variables = variables or {}
    if variables and (bad := invalid_unicode(variables)):
        return [refuse(f"Variable `{bad}` is not valid Unicode (a lone surrogate).")]
    same = _Same(document)
    shape = _shape(same, operation_name)
    if shape is None:
        return []  # graphql-core reports the unknown operation itself
    name = operation_name or "anonymous"
    if shape.depth > limits.max_depth:
        return [refuse(f"'{name}' exceeds maximum operation depth of {limits.max_depth}")]
    if shape.aliases > limits.max_aliases:
        return [refuse(f"{shape.aliases} aliases found. Allowed: {limits.max_aliases}")]
    pages = tuple(  # as served: a size beyond the largest page is served as the largest
        max(0, min(value, MAX_PAGE)) if isinstance(value := variables.get(name), int) else None
        for name in _page_variables(same)
    )
    passing = _passing(schema, same, operation_name, limits.max_cost)
    if any(_within(pages, known) for known in passing):
        return []
    # The largest pages first: when they pass, every size passes unmeasured from now on (a
    # paging front-end's document costs one measurement, whatever sizes it draws).
    for candidate in dict.fromkeys((_largest(pages), pages)):
        cost = _cost(schema, same, operation_name, candidate)
        if cost <= limits.max_cost:
            kept = (known for known in passing if not _within(known, candidate))
            passing[:] = [candidate, *kept][:8]
            return []
    return [
        refuse(
            f"'{name}' costs {cost:.3g} fields, over the limit of {limits.max_cost}: "
            "ask for smaller pages or fewer nested lists."
        )
    ]


def _largest(pages: tuple[int | None, ...]) -> tuple[int | None, ...]:
    """The largest page served for each size given (an absent one stays the field's default)."""
    return tuple(None if size is None else MAX_PAGE for size in pages)


class OperationLimits(SchemaExtension):
    """Refuse an operation over the depth, alias or cost limits, after the standard rules
    (which must run first: they prove the fragments exist and are acyclic)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if not context.pre_execution_errors and context.graphql_document is not None:
            errors = check(
                self.limits,
                context.schema._schema,
                context.graphql_document,
                context.operation_name,
                context.variables,
            )
            if errors:
                context.pre_execution_errors = errors
        yield
