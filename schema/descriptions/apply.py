"""The descriptions put on the built schema (`describe`), with who may use each restricted field
or argument generated from the policy table, so that GraphiQL's docs, introspection and the
types a client generates say it (the SDL's directives are not in introspection)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    specified_scalar_types,
)

from permissions.document_policy import restricted_fields
from permissions.policy import ALLOWED, POLICY, ROW_SCOPES, Rule
from permissions.principal import PartyCategory
from schema.descriptions import DESCRIPTIONS

EVERY_CATEGORY = frozenset(PartyCategory)
# What a caller the rule does not allow is answered: for a field it reads, for an argument it
# sets (the whole root field it is given to is refused, `permissions.document_policy`).
READ_REFUSED = "Anyone else gets null, with a FORBIDDEN error."
USE_REFUSED = "Set by anyone else, it is refused: its root field is null, with a FORBIDDEN error."


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def access(rule: Rule) -> str | None:
    """The policy's words for who a rule allows, and on which rows ("SSC only", "SECAS and SSC
    only", "MANUFACTURER (own devices only) and SECAS only", "every authenticated Party, for its
    own webhooks only"); None for everyone, unscoped."""
    allowed, scope = ALLOWED[rule], ROW_SCOPES.get(rule)
    if allowed == EVERY_CATEGORY:  # everyone, on their own rows only, or simply everyone
        return None if scope is None else rule.value
    names = [
        category.value + (f" ({scope.mark} only)" if scope and category in scope.categories else "")
        for category in sorted(allowed, key=lambda category: category.value)
    ]
    return f"{_listed(names)} only"


def _access_sentence(rule: Rule, refused: str) -> str | None:
    words = access(rule)
    if words is None:
        return None
    return f"Access: {words}." + ("" if ALLOWED[rule] == EVERY_CATEGORY else f" {refused}")


def _argument_words(argument: Any) -> str | None:
    """An argument's: the restricted fields of its input (at any depth), by whom they allow."""
    inner = get_named_type(argument.type)
    if not isinstance(inner, GraphQLInputObjectType):
        return None
    by_words: dict[str, list[str]] = {}
    for dotted, rule in restricted_fields(inner).items():
        words = access(rule)
        if words is not None:
            by_words.setdefault(words, []).append(f"`{dotted}`")
    if not by_words:
        return None
    parts = [f"{_listed(names)}: {words}" for words, names in by_words.items()]
    return f"Access: {'; '.join(parts)}. {USE_REFUSED}"


def policy_words(key: str, element: Any) -> str | None:
    """What the policy table says of this element, if it restricts it."""
    owner, _, rest = key.partition(".")
    if "(" in rest:
        return _argument_words(element)
    found = POLICY.get(owner, {}).get(rest)
    if found is None:
        return None
    refused = USE_REFUSED if isinstance(element, GraphQLInputField) else READ_REFUSED
    return _access_sentence(found, refused)


def elements(schema: GraphQLSchema) -> Iterator[tuple[str, Any]]:
    """Every describable element of the schema but the introspection types and the built-in
    scalars, by its key."""
    for name, named in schema.type_map.items():
        if name.startswith("__") or name in specified_scalar_types:
            continue
        yield name, named
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                yield f"{name}.{field_name}", field
                for argument_name, argument in field.args.items():
                    yield f"{name}.{field_name}({argument_name})", argument
        elif isinstance(named, GraphQLInputObjectType):
            for field_name, field in named.fields.items():
                yield f"{name}.{field_name}", field
        elif isinstance(named, GraphQLEnumType):
            for value_name, value in named.values.items():
                yield f"{name}.{value_name}", value


def _inherited(schema: GraphQLSchema, key: str) -> str | None:
    """An object field's description from an interface it implements, where it has none."""
    owner, _, field = key.partition(".")
    named = schema.type_map.get(owner)
    if not field or "(" in field or not isinstance(named, GraphQLObjectType):
        return None
    for interface in named.interfaces:
        found = DESCRIPTIONS.get(f"{interface.name}.{field}")
        if found is not None:
            return found
    return None


def text_for(schema: GraphQLSchema, key: str, element: Any) -> str | None:
    """The description of one element: the table's (or its interface's), then the policy's."""
    text = DESCRIPTIONS.get(key) or _inherited(schema, key)
    if text is None:
        return None
    words = policy_words(key, element)
    return text if words is None else f"{text}\n\n{words}"


def describe(schema: GraphQLSchema) -> None:
    """Put every description on the built schema. What the table misses keeps whatever it had
    (nothing, mostly): the descriptions test names it."""
    for key, element in elements(schema):
        text = text_for(schema, key, element)
        if text is not None:
            element.description = text


def unknown_keys(schema: GraphQLSchema) -> list[str]:
    """Keys of the table that name nothing in the schema (a field renamed or removed)."""
    known = {key for key, _ in elements(schema)}
    return sorted(DESCRIPTIONS.keys() - known)
