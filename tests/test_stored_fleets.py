"""A Supplier's stored fleet through GraphQL: replaced whole by `replaceFleet`, read back by
`myFleet` with the plan `fleetPlan` gives for the same items, and read or replaced by its own
Party only (the policy table's `OWN_FLEET` rule and its row scope)."""

from __future__ import annotations

from datetime import datetime

import pytest

from permissions.policy import ALLOWED, ROW_SCOPES, Rule
from permissions.principal import PartyCategory, Principal
from permissions.row_scopes import NO_ROWS, row_scope
from resolvers.planning.stored_fleet import MAX_FLEET_GROUPS
from tests.conftest import CATEGORIES

SUPPLIERS = ["LARGE_SUPPLIER", "SMALL_SUPPLIER"]
OTHERS = [c for c in CATEGORIES if c not in SUPPLIERS]
PLAN = """entries { index firmwareVersion meterCount problem device { id }
    plan { reachable reason steps { id } } }
  summary { meters upToDate upgradable blocked metersByStepCount { steps meters } }"""
MY_FLEET = f"""{{ myFleet {{ replacedAt meters
  groups {{ device {{ id modelIdentifier }} firmwareVersion meterCount }} plan {{ {PLAN} }} }} }}"""
REPLACE = """mutation($input: ReplaceFleetInput!) { replaceFleet(input: $input) { __typename
  ... on ReplaceFleetSuccess { fleet { meters
    groups { device { id } firmwareVersion meterCount } } }
  ... on InvalidFleetError { code message field problems { index problem } }
  ... on MutationError { code message field } } }"""
FLEET_PLAN = f"""query($items: [FleetItemInput!]!) {{ fleetPlan(items: $items) {{ {PLAN} }} }}"""
ITEMS = [
    {"deviceId": "device:1", "firmwareVersion": "7f000000", "meterCount": 1200},
    {"deviceId": "device:2", "firmwareVersion": "7F010000", "meterCount": 300},
    # The same device and version again, by identifiers this time: summed with the first.
    {
        "manufacturerIdentifier": "0a1b",
        "modelIdentifier": "1000",
        "hardwareVersion": "0100",
        "firmwareVersion": "7F000000",
        "meterCount": 34,
    },
]
GROUPS = [
    {"device": {"id": "device:1"}, "firmwareVersion": "7F000000", "meterCount": 1234},
    {"device": {"id": "device:2"}, "firmwareVersion": "7F010000", "meterCount": 300},
]


async def replace(isolated, items: list[dict], party: str = "P-NORTH", **extra) -> dict:
    body = await isolated.gql(
        "LARGE_SUPPLIER", REPLACE, {"input": {"items": items, **extra}}, party_id=party
    )
    assert "errors" not in body, body
    return body["data"]["replaceFleet"]


async def my_fleet(isolated, party: str = "P-NORTH", category: str = "LARGE_SUPPLIER") -> dict:
    return await isolated.gql(category, MY_FLEET, party_id=party)


async def test_replaced_by_mutation_read_back_with_fleet_plans_plan(isolated) -> None:
    assert (await my_fleet(isolated)) == {"data": {"myFleet": None}}  # none stored yet
    result = await replace(isolated, ITEMS)
    fleet = {"meters": 1534, "groups": GROUPS}
    assert result == {"__typename": "ReplaceFleetSuccess", "fleet": fleet}
    body = await my_fleet(isolated)
    assert "errors" not in body, body
    fleet = body["data"]["myFleet"]
    assert fleet["meters"] == 1534
    assert datetime.fromisoformat(fleet["replacedAt"]).tzinfo is not None
    assert fleet["groups"][0]["device"] == {"id": "device:1", "modelIdentifier": "1000"}
    # The plan is fleetPlan's own answer for the groups as items.
    items = [
        {"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 1234},
        {"deviceId": "device:2", "firmwareVersion": "7F010000", "meterCount": 300},
    ]
    planned = await isolated.gql("LARGE_SUPPLIER", FLEET_PLAN, {"items": items})
    assert fleet["plan"] == planned["data"]["fleetPlan"]
    assert fleet["plan"]["summary"]["meters"] == 1534


async def test_a_replacement_is_whole_and_an_empty_list_clears(isolated) -> None:
    await replace(isolated, ITEMS)
    await replace(isolated, [{"deviceId": "device:3", "firmwareVersion": "7F020000"}])
    fleet = (await my_fleet(isolated))["data"]["myFleet"]
    assert [g["device"]["id"] for g in fleet["groups"]] == ["device:3"]
    assert fleet["meters"] == 1
    assert (await replace(isolated, []))["fleet"] == {"meters": 0, "groups": []}
    fleet = (await my_fleet(isolated))["data"]["myFleet"]
    assert fleet["meters"] == 0 and fleet["groups"] == [] and fleet["plan"]["entries"] == []


async def test_bad_items_are_named_and_nothing_is_stored(isolated) -> None:
    await replace(isolated, ITEMS)
    before = await my_fleet(isolated)
    bad = [
        ITEMS[0],
        {"deviceId": "device:1", "firmwareVersion": "DEADBEEF"},
        {"deviceId": "device:999", "firmwareVersion": "7F000000"},
        {"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 0},
    ]
    result = await replace(isolated, bad)
    assert result["__typename"] == "InvalidFleetError"
    assert (result["code"], result["field"]) == ("VALIDATION", "items")
    assert result["problems"] == [
        {"index": 1, "problem": "firmwareVersion is not on the CPL for this device"},
        {"index": 2, "problem": "no device has this deviceId"},
        {"index": 3, "problem": "meterCount must be at least 1"},
    ]
    assert await my_fleet(isolated) == before
    assert await isolated.scalar("SELECT count(*) FROM fleet_group") == len(GROUPS)


async def test_too_many_items_or_meters_are_refused(isolated) -> None:
    many = [{"deviceId": "device:1", "firmwareVersion": "7F000000"}] * (MAX_FLEET_GROUPS + 1)
    result = await replace(isolated, many)
    assert result["__typename"] == "InvalidFleetError" and result["problems"] == []
    assert f"at most {MAX_FLEET_GROUPS:,}" in result["message"]
    big = [{**ITEMS[0], "meterCount": 2**31 - 1}, {**ITEMS[1], "meterCount": 1}]
    result = await replace(isolated, big)
    assert result["__typename"] == "InvalidFleetError"
    assert "add up to at most" in result["message"]
    assert (await my_fleet(isolated))["data"]["myFleet"] is None


async def test_an_idempotency_key_returns_the_first_result_and_stores_nothing_new(isolated) -> None:
    first = await replace(isolated, ITEMS, idempotencyKey="fleet-1")
    replaced_at = (await my_fleet(isolated))["data"]["myFleet"]["replacedAt"]
    again = await replace(isolated, ITEMS, idempotencyKey="fleet-1")
    assert again == first
    assert (await my_fleet(isolated))["data"]["myFleet"]["replacedAt"] == replaced_at
    other = await replace(isolated, ITEMS[:1], idempotencyKey="fleet-1")
    assert (other["__typename"], other["code"]) == ("ConflictError", "CONFLICT")
    # Another Party's same key is its own.
    theirs = await replace(isolated, ITEMS[:1], party="P-SOUTH", idempotencyKey="fleet-1")
    assert theirs["fleet"]["meters"] == 1200


async def test_each_supplier_reads_only_its_own_fleet(isolated) -> None:
    await replace(isolated, ITEMS, party="P-NORTH")
    await replace(isolated, ITEMS[1:2], party="P-SOUTH")
    north = (await my_fleet(isolated, "P-NORTH"))["data"]["myFleet"]
    south = (await my_fleet(isolated, "P-SOUTH", "SMALL_SUPPLIER"))["data"]["myFleet"]
    assert north["meters"] == 1534 and south["meters"] == 300
    assert (await my_fleet(isolated, "P-WEST"))["data"]["myFleet"] is None


async def test_the_response_cache_never_answers_one_supplier_with_anothers_fleet(isolated):
    """Both Suppliers have one capability, so without the Party in the key for `myFleet` the
    second would be served the first's cached answer."""
    await replace(isolated, ITEMS, party="P-NORTH")
    await replace(isolated, ITEMS[1:2], party="P-SOUTH")
    responses = isolated.services.responses
    for _ in range(2):  # the second round is answered from the cache, each its own
        north = await my_fleet(isolated, "P-NORTH")
        south = await my_fleet(isolated, "P-SOUTH")
        assert north["data"]["myFleet"]["meters"] == 1534
        assert south["data"]["myFleet"]["meters"] == 300
    hits = responses.hits
    assert hits >= 2
    # A replacement is a write: the owner's next read is the new fleet, not a cached one.
    await replace(isolated, ITEMS[:1], party="P-NORTH")
    assert (await my_fleet(isolated, "P-NORTH"))["data"]["myFleet"]["meters"] == 1200
    assert (await my_fleet(isolated, "P-SOUTH"))["data"]["myFleet"]["meters"] == 300


@pytest.mark.parametrize("category", OTHERS)
async def test_every_other_category_is_refused_by_the_policy_table(isolated, category) -> None:
    await replace(isolated, ITEMS, party="P-NORTH")
    claims = {"manufacturer_id": "0A1B"} if category == "MANUFACTURER" else {}
    # Even with the owner's Party id: the rule is not granted to the category at all.
    read = await isolated.gql(category, MY_FLEET, party_id="P-NORTH", **claims)
    assert read["data"] == {"myFleet": None}
    assert [e["extensions"]["code"] for e in read["errors"]] == ["FORBIDDEN"]
    assert "1534" not in str(read) and "7F000000" not in str(read)
    write = await isolated.gql(
        category, REPLACE, {"input": {"items": ITEMS[:1]}}, party_id="P-NORTH", **claims
    )
    assert write["data"] == {"replaceFleet": None}
    assert [e["extensions"]["code"] for e in write["errors"]] == ["FORBIDDEN"]
    north = (await my_fleet(isolated, "P-NORTH"))["data"]["myFleet"]
    assert north["meters"] == 1534  # unchanged


def caller(category: PartyCategory, party: str = "P-NORTH") -> Principal:
    return Principal("sub", party, category)


def test_the_rule_and_its_row_scope_allow_a_supplier_its_own_party_only() -> None:
    assert ALLOWED[Rule.OWN_FLEET] == {PartyCategory.LARGE_SUPPLIER, PartyCategory.SMALL_SUPPLIER}
    assert ROW_SCOPES[Rule.OWN_FLEET].owner.value == "party_id"
    for category in (PartyCategory.LARGE_SUPPLIER, PartyCategory.SMALL_SUPPLIER):
        scope = row_scope(caller(category), "Query", "myFleet")
        assert scope.allows("P-NORTH") and not scope.allows("P-SOUTH")
        assert not scope.every_row
    for category in PartyCategory:
        if category.name.endswith("SUPPLIER"):
            continue
        assert row_scope(caller(category), "Query", "myFleet") is NO_ROWS
        assert row_scope(caller(category), "Mutation", "replaceFleet") is NO_ROWS
