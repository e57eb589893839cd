"""The policy decided once per document: every restricted argument and field in the schema is
refused to the categories the table denies (generated from the table, not listed by hand), and
the cost of a denial does not grow with the rows."""

from __future__ import annotations

import pytest
from graphql import GraphQLInputObjectType, GraphQLNonNull, GraphQLObjectType, get_named_type

import permissions.strawberry_adapter as enforcement
from permissions.document_policy import restricted_fields
from permissions.policy import ALLOWED, POLICY, Rule
from permissions.principal import PartyCategory
from schema.build import build_schema
from tests.harness import count_calls

SCHEMA = build_schema()._schema
CATEGORIES = [c.value for c in PartyCategory]


def restricted_argument_sites() -> list[tuple[str, str, str, str, Rule]]:
    """(root field, argument, input type, dotted input field, rule) for every restricted
    input field reachable from a Query argument."""
    sites = []
    for field_name, field in SCHEMA.query_type.fields.items():
        for argument_name, argument in field.args.items():
            input_type = get_named_type(argument.type)
            if isinstance(input_type, GraphQLInputObjectType):
                for dotted, rule in restricted_fields(input_type).items():
                    sites.append((field_name, argument_name, input_type.name, dotted, rule))
    return sites


def test_restricted_inputs_sit_only_on_non_null_query_fields() -> None:
    """Refusing the operation for a restricted argument equals refusing its root field only
    while those fields are non-null (GraphQL nulls the whole answer for them anyway)."""
    restricted_types = {
        type_name
        for type_name, rules in POLICY.items()
        if isinstance(SCHEMA.get_type(type_name), GraphQLInputObjectType)
        and any(ALLOWED[rule] != ALLOWED[Rule.PUBLIC] for rule in rules.values())
    }
    assert restricted_types, "the table restricts no input field any more: revisit this test"
    for type_name, graphql_type in SCHEMA.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in graphql_type.fields.items():
            for argument in field.args.values():
                if get_named_type(argument.type).name in restricted_types:
                    assert graphql_type is SCHEMA.query_type, f"{type_name}.{field_name}"
                    assert isinstance(field.type, GraphQLNonNull), f"{type_name}.{field_name}"


def test_restricted_output_fields_below_the_root_are_nullable() -> None:
    """A denied field becomes null where it stands; that needs it to be nullable."""
    for type_name, rules in POLICY.items():
        graphql_type = SCHEMA.get_type(type_name)
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type in (
            SCHEMA.query_type,
            SCHEMA.mutation_type,
            SCHEMA.subscription_type,
        ):
            continue
        for field_name, rule in rules.items():
            if ALLOWED[rule] != ALLOWED[Rule.PUBLIC]:
                field = graphql_type.fields[field_name]
                assert not isinstance(field.type, GraphQLNonNull), f"{type_name}.{field_name}"


SITES = restricted_argument_sites()


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize(("root", "argument", "input_type", "dotted", "rule"), SITES)
async def test_every_restricted_argument_is_refused_to_the_categories_it_denies(
    gql, category, root, argument, input_type, dotted, rule
):
    value: object = "probe"
    for part in reversed(dotted.split(".")):
        value = {part: value}
    query = f"query($v: {input_type}) {{ {root}({argument}: $v) {{ __typename }} }}"
    body = await gql(category, query, {"v": value})
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
    if PartyCategory(category) in ALLOWED[rule]:
        assert "FORBIDDEN" not in codes, body
    else:
        assert body["data"] is None and codes == ["FORBIDDEN"], body
        assert "probe" not in str(body)


@pytest.mark.parametrize("first", [1, 12])
async def test_a_denied_selection_costs_one_check_per_request_not_per_row(
    gql, services, monkeypatch, first
):
    monkeypatch.setattr(services.responses, "max_bytes", 0)  # measure execution, not the cache
    query = f"{{ devices(first: {first}) {{ nodes {{ modelName zigbeeChipsetVendor }} }} }}"
    await gql("LARGE_SUPPLIER", query)  # the decision for this document is now cached
    decided = count_calls(monkeypatch, enforcement, "decide")
    applied = count_calls(monkeypatch, enforcement, "apply_denials")
    body = await gql("LARGE_SUPPLIER", query)
    assert len(body["data"]["devices"]["nodes"]) == first
    assert all(node["zigbeeChipsetVendor"] is None for node in body["data"]["devices"]["nodes"])
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert decided == [1] and applied == [1]
