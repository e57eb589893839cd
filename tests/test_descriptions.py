"""Every type, field, argument and enum value of the schema is described, from one place
(`schema/descriptions/`), and every restricted one says who may use it, in the policy table's
words, where GraphiQL's docs and generated client types read it: introspection."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from permissions.policy import ALLOWED, POLICY, Rule
from schema.build import build_schema
from schema.descriptions import DESCRIPTIONS
from schema.descriptions.apply import access, elements, unknown_keys

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = build_schema()._schema


def test_every_type_field_argument_and_enum_value_is_described() -> None:
    undescribed = [key for key, element in elements(SCHEMA) if not element.description]
    assert undescribed == [], (
        "add these keys to a table of schema/descriptions/ (its docstring says how keys read)"
    )


def test_every_key_of_the_tables_names_something_in_the_schema() -> None:
    assert unknown_keys(SCHEMA) == []


def test_descriptions_are_written_in_the_tables_only() -> None:
    """Not also beside the fields: a `description=` in schema/ would be overwritten by the
    table's or, without one, be a second place to look."""
    found = []
    for path in sorted((ROOT / "schema").rglob("*.py")):
        if "descriptions" in path.relative_to(ROOT / "schema").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and any(k.arg == "description" for k in node.keywords):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], "move these descriptions into schema/descriptions/"


def test_who_may_use_a_field_is_generated_never_written() -> None:
    assert [key for key, text in DESCRIPTIONS.items() if "Access:" in text] == []


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (Rule.PUBLIC, None),
        (Rule.SSC_ONLY, "SSC only"),
        (Rule.AUDITORS, "SECAS and SSC only"),
        (Rule.DEVICE_WRITERS, "MANUFACTURER (own devices only) and SECAS only"),
        (Rule.OWN_WEBHOOKS, "every authenticated Party, for its own webhooks only"),
    ],
)
def test_the_policy_words_come_from_the_table(rule: Rule, words: str | None) -> None:
    assert access(rule) == words


def test_every_restricted_field_says_who_may_use_it() -> None:
    fields = {key: element for key, element in elements(SCHEMA)}
    for type_name, rules in POLICY.items():
        for field_name, rule in rules.items():
            words = access(rule)
            if words is None:
                continue
            description = fields[f"{type_name}.{field_name}"].description
            assert f"\n\nAccess: {words}." in description, f"{type_name}.{field_name}"
            everyone = ALLOWED[rule] == ALLOWED[Rule.PUBLIC]
            assert ("FORBIDDEN" in description) is not everyone, f"{type_name}.{field_name}"


INTROSPECTION = """{
  device: __type(name: "Device") { description fields { name description } }
  query: __type(name: "Query") { fields { name args { name description } } }
  band: __type(name: "ZigbeeBand") { enumValues { name description } }
  filter: __type(name: "DeviceFilter") { inputFields { name description } }
}"""


async def test_a_supplier_reads_in_the_schema_itself_that_zigbee_details_are_the_sscs(
    gql,
) -> None:
    """What GraphiQL's docs and a code generator read: introspection, as any caller may."""
    body = await gql("SMALL_SUPPLIER", INTROSPECTION)
    assert "errors" not in body
    data = body["data"]
    device = {field["name"]: field["description"] for field in data["device"]["fields"]}
    assert data["device"]["description"].startswith("A device model at one hardware version")
    assert device["zigbeeStackVersion"].endswith(
        "Access: SSC only. Anyone else gets null, with a FORBIDDEN error."
    )
    assert "Access" not in device["zigbeeBand"]
    devices = next(f for f in data["query"]["fields"] if f["name"] == "devices")
    arguments = {argument["name"]: argument["description"] for argument in devices["args"]}
    assert (
        "`zigbeeStackVersion`, `zigbeeChipsetVendor` and `zigbeeMatch`: SSC only"
        in arguments["filter"]
    )
    assert all(arguments.values())
    assert [value["description"] for value in data["band"]["enumValues"]] == [
        "2.4 GHz.",
        "868 MHz (sub-GHz).",
        "Both 2.4 GHz and 868 MHz.",
    ]
    filters = {field["name"]: field["description"] for field in data["filter"]["inputFields"]}
    assert "Access: SSC only." in filters["zigbeeChipsetVendor"]
