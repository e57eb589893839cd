"""Deny by default: the built schema and the policy table agree, field for field, and the
committed SDL and README matrix are what the code produces."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType

from permissions.policy import (
    ALLOWED,
    POLICY,
    Audience,
    Rule,
    reason_readable,
    rule_for,
)
from permissions.principal import PartyCategory, Principal
from permissions.readme import render_matrix
from permissions.strawberry_adapter import DIRECTIVES
from schema.build import build_schema, sdl

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = build_schema()


def schema_fields() -> dict[str, list[str]]:
    found = {}
    for name, graphql_type in SCHEMA._schema.type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(
            graphql_type, GraphQLObjectType | GraphQLInputObjectType | GraphQLInterfaceType
        ):
            found[name] = list(graphql_type.fields)
    return found


def test_every_field_has_a_rule() -> None:
    missing = [
        f"{type_name}.{field}"
        for type_name, fields in schema_fields().items()
        for field in fields
        if field not in POLICY.get(type_name, {})
    ]
    assert missing == [], f"fields without a policy rule: {missing}"


def test_no_rule_names_a_field_that_does_not_exist() -> None:
    fields = schema_fields()
    stale = [
        f"{type_name}.{field}"
        for type_name, rules in POLICY.items()
        for field in rules
        if field not in fields.get(type_name, [])
    ]
    assert stale == []


def test_unknown_field_is_denied_not_public() -> None:
    try:
        rule_for("Device", "secretNewField")
    except LookupError:
        return
    raise AssertionError("a field without a rule must not get one by default")


def test_fields_carry_the_directive_of_their_rule() -> None:
    for type_name, rules in POLICY.items():
        definition = SCHEMA.get_type_by_name(type_name)
        if definition is None:
            continue
        exposed = SCHEMA._schema.type_map[type_name].fields
        for field in definition.fields:
            name = field.graphql_name or SCHEMA.config.name_converter.get_graphql_name(field)
            if name not in exposed:
                continue  # strawberry.Private: not in the schema
            rule = rules[name]
            everyone = ALLOWED[rule] == ALLOWED[Rule.PUBLIC]
            expected = [] if everyone else [type(DIRECTIVES[rule])]
            assert [type(d) for d in field.directives] == expected, f"{type_name}.{field.name}"


def test_restricted_input_fields_are_marked_in_the_sdl() -> None:
    text = sdl()
    assert "zigbeeStackVersion: String = null @sscOnly" in text
    assert "zigbeeChipsetVendor: String = null @sscOnly" in text
    assert "zigbeeStackVersion: String @sscOnly" in text
    assert "zigbeeChipsetVendor: String @sscOnly" in text
    assert "zigbeeBand: ZigbeeBand\n" in text


def test_committed_sdl_is_current() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == sdl(), "schema.graphql is stale: run `cpl-pathways schema > schema.graphql`"


def test_readme_matrix_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert render_matrix() in readme, "README permission matrix is stale: see `make docs`"


def test_one_reason_rule_for_history_subscriptions_and_webhooks() -> None:
    """A reason is shown only to a reader who may see every value the event changed; a webhook
    body's reader is every Party, and a missing caller sees nothing (deny by default)."""
    ssc = Principal("s", "p", PartyCategory.SSC)
    supplier = Principal("s", "p", PartyCategory.LARGE_SUPPLIER)
    readers = [ssc, supplier, Audience.EVERY_PARTY, None]

    def shown(changes: list[dict]) -> list[bool]:
        return [reason_readable(reader, "Device", changes) for reader in readers]

    assert shown([{"field": "zigbeeChipsetVendor"}, {"field": "modelName"}]) == [
        True,
        False,
        False,
        False,
    ]
    assert shown([{"field": "modelName"}]) == [True, True, True, False]
    assert shown([]) == [True, True, True, True]
    assert shown([{"field": "noSuchField"}]) == [False] * 4  # unknown to the table: hidden
