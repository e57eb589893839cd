"""The policy decided once per document: every restricted argument and field in the schema is
refused to the categories the table denies (generated from the table, not listed by hand), and
the cost of a denial does not grow with the rows."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLNonNull,
    GraphQLObjectType,
    build_ast_schema,
    execute_sync,
    get_named_type,
    parse,
    validate,
)

import permissions.strawberry_adapter as enforcement
import schema.direct as direct
import server.graphql_view as view
from permissions.document_policy import Decision, decide, restricted_fields
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


def probe(input_type: str, dotted: str) -> object:
    """A value of the input field's own type: "probe" for text, an enum's first value."""
    graphql_type = SCHEMA.get_type(input_type)
    for part in dotted.split("."):
        graphql_type = get_named_type(graphql_type.fields[part].type)
    return next(iter(graphql_type.values)) if isinstance(graphql_type, GraphQLEnumType) else "probe"


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize(("root", "argument", "input_type", "dotted", "rule"), SITES)
async def test_every_restricted_argument_is_refused_to_the_categories_it_denies(
    gql, category, root, argument, input_type, dotted, rule
):
    value: object = probe(input_type, dotted)
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
    """Asked again, by its plan (`schema.direct`): decided once (by the HTTP view, the plan's
    extensions' work done without them) and its denials placed once."""
    monkeypatch.setattr(services.responses, "max_bytes", 0)  # measure execution, not the cache
    query = f"{{ devices(first: {first}) {{ nodes {{ modelName zigbeeChipsetVendor }} }} }}"
    await gql("LARGE_SUPPLIER", query)  # the decision for this document is now cached
    decided = [count_calls(monkeypatch, where, "decide") for where in (enforcement, view)]
    applied = [count_calls(monkeypatch, where, "apply_denials") for where in (enforcement, direct)]
    body = await gql("LARGE_SUPPLIER", query)
    assert len(body["data"]["devices"]["nodes"]) == first
    assert all(node["zigbeeChipsetVendor"] is None for node in body["data"]["devices"]["nodes"])
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert sum(calls for [calls] in decided) == 1 and sum(calls for [calls] in applied) == 1


# A schema of the test's own with what the real one lacks: a query answering a union, one of
# whose members has an SSC-only field (the table knows `Device` and `Firmware` by name).
MIXED = build_ast_schema(
    parse(
        """
        union Thing = Device | Firmware
        type Device { id: ID! modelName: String zigbeeChipsetVendor: String }
        type Firmware { id: ID! version: String }
        type Query { devices: [Thing!]! }
        """
    )
)
THINGS = [
    {"__typename": "Firmware", "id": "firmware:1", "version": "0102"},
    {"__typename": "Device", "id": "device:1", "modelName": "M1", "zigbeeChipsetVendor": "V1"},
    {"__typename": "Device", "id": "device:2", "modelName": "M2", "zigbeeChipsetVendor": "V2"},
]


def decided_answer(schema, query: str, category: PartyCategory) -> tuple[Decision, Any]:
    """The decision for `query` and its answer on `THINGS`, denials applied."""
    document = parse(query)
    assert validate(schema, document) == []
    decision = decide(schema, document, None, category)
    result = execute_sync(schema, decision.document, root_value={"devices": THINGS})
    enforcement.apply_denials(decision, result)
    return decision, result


def test_one_response_key_is_nulled_on_the_type_that_denies_it_only() -> None:
    """`v` is a Device's SSC-only vendor and a Firmware's public version: null on the devices,
    kept on the firmware, in the place the client put it; one error, where it first was. A
    client's alias under the stand-ins' prefix is the client's own, never taken for one."""
    query = """{ devices { ... on Firmware { v: version }
                           ... on Device { _denied_0: id v: zigbeeChipsetVendor modelName } } }"""
    decision, result = decided_answer(MIXED, query, PartyCategory.LARGE_SUPPLIER)
    assert [d.key for d in decision.stand_ins.values()] == ["v"]
    assert all(not alias.startswith("_denied_") for alias in decision.stand_ins)
    assert result.data == {
        "devices": [
            {"v": "0102"},
            {"_denied_0": "device:1", "v": None, "modelName": "M1"},
            {"_denied_0": "device:2", "v": None, "modelName": "M2"},
        ]
    }
    assert [list(thing) for thing in result.data["devices"][1:]] == [
        ["_denied_0", "v", "modelName"]
    ] * 2
    (error,) = result.errors
    assert error.path == ["devices", 1, "v"] and error.extensions == {"code": "FORBIDDEN"}
    column = query.splitlines()[1].index("v: zigbee") + 1
    assert [(loc.line, loc.column) for loc in error.locations] == [(2, column)]
    introspected = """{ t: __type(name: "Thing") { _denied_0: name }
                        devices { ... on Device { zigbeeChipsetVendor } } }"""
    decision, result = decided_answer(MIXED, introspected, PartyCategory.LARGE_SUPPLIER)
    assert all(not alias.startswith("_denied_") for alias in decision.stand_ins)
    assert result.data["t"] == {"_denied_0": "Thing"} and len(result.errors) == 1
    allowed, ssc = decided_answer(MIXED, query, PartyCategory.SSC)
    assert not allowed.stand_ins and ssc.errors is None
    assert [thing.get("v") for thing in ssc.data["devices"]] == ["0102", "V1", "V2"]


def test_a_denied_key_selected_twice_is_null_once_where_it_first_stood() -> None:
    query = """{ devices { ... on Device { zigbeeChipsetVendor modelName ...Vendor } } }
               fragment Vendor on Device { zigbeeChipsetVendor }"""
    decision, result = decided_answer(MIXED, query, PartyCategory.SECAS)
    assert len(decision.stand_ins) == 2
    assert result.data["devices"][0] == {}
    assert [list(thing.items()) for thing in result.data["devices"][1:]] == [
        [("zigbeeChipsetVendor", None), ("modelName", "M1")],
        [("zigbeeChipsetVendor", None), ("modelName", "M2")],
    ]
    assert [error.path for error in result.errors] == [["devices", 1, "zigbeeChipsetVendor"]]
