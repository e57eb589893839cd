"""`fleetDigest`: the changes since a time that touched the caller's own stored fleet, each with
its own `fleetImpact` (checked against `fleetPlan` before and after it), summed; read by a
Supplier for its own fleet only, every other category refused by the policy table."""

from __future__ import annotations

import pytest

from models.notice import FleetImpact as FleetImpactRow
from resolvers.planning import digest
from resolvers.planning.digest import MAX_SUM, summed_impact
from tests.test_fleet_impact import (
    ADD_FIRMWARE,
    ELSEWHERE,
    FLEET,
    IMPACT,
    NEIGHBOUR,
    OWNER,
    WITHDRAW_PATHWAY,
    ZIGBEE,
    E,
    expected,
    plans,
)
from tests.test_stored_fleets import OTHERS, replace

DIGEST = f"""query($since: DateTime!) {{ fleetDigest(since: $since) {{ since
  changes {{ eventId kind occurredAt device {{ id }} {IMPACT} }} impact {{ affectedMeters
  newlyBlockedMeters newlyUpgradableMeters }} }} }}"""
LONG_AGO = "2000-01-01T00:00:00+00:00"


async def read(isolated, since: str = LONG_AGO, party: str = OWNER, category="LARGE_SUPPLIER"):
    body = await isolated.gql(category, DIGEST, {"since": since}, party_id=party)
    assert "errors" not in body, body
    return body["data"]["fleetDigest"]


async def changed(isolated) -> list[dict | None]:
    """Three changes, one touching no fleet: each one's impact as `fleetPlan` says it."""
    await replace(isolated, FLEET, OWNER)
    await replace(isolated, ELSEWHERE, NEIGHBOUR)
    assert "errors" not in await isolated.gql("SECAS", ZIGBEE)
    impacts = []
    for mutation, variables, touched in (
        (WITHDRAW_PATHWAY, {"id": "pathway:2"}, {"pathway:2"}),
        (ADD_FIRMWARE, {"v": E}, set()),
    ):
        before = await plans(isolated)
        body = await isolated.gql("SECAS", mutation, variables)
        assert "Success" in str(body["data"]), body
        impacts.append(expected(before, await plans(isolated), touched))
    return impacts


async def test_the_owner_reads_the_changes_touching_its_fleet_and_their_sum(isolated) -> None:
    impacts = await changed(isolated)
    assert all(impacts)  # both touch the owner's fleet
    found = await read(isolated)
    assert found["since"] == LONG_AGO
    assert [c["kind"] for c in found["changes"]] == ["PATHWAY_WITHDRAWN", "FIRMWARE_ADDED"]
    assert [c["fleetImpact"] for c in found["changes"]] == impacts
    assert found["impact"] == {
        key: sum(impact[key] for impact in impacts if impact) for key in impacts[0] or {}
    }
    # `since` is inclusive, and cuts the earlier changes off.
    later = await read(isolated, found["changes"][1]["occurredAt"])
    assert later["changes"] == found["changes"][1:]
    assert later["impact"] == impacts[1]
    # A time without an offset is UTC.
    naive = await read(isolated, found["changes"][1]["occurredAt"].replace("+00:00", ""))
    assert naive["changes"] == later["changes"]


async def test_a_party_whose_fleet_is_untouched_or_absent_reads_nothing(isolated) -> None:
    await changed(isolated)
    empty = {"since": LONG_AGO, "changes": [], "impact": None}
    assert await read(isolated, party=NEIGHBOUR, category="SMALL_SUPPLIER") == empty
    assert await read(isolated, party="P-NOBODY") == empty
    future = "2999-01-01T00:00:00+00:00"
    assert await read(isolated, future) == {"since": future, "changes": [], "impact": None}


async def test_the_changes_are_bounded_oldest_first(isolated, monkeypatch) -> None:
    await changed(isolated)
    monkeypatch.setattr(digest, "MAX_DIGEST_CHANGES", 1)
    found = await read(isolated)
    assert [c["kind"] for c in found["changes"]] == ["PATHWAY_WITHDRAWN"]
    assert found["impact"] == found["changes"][0]["fleetImpact"]


@pytest.mark.parametrize("category", OTHERS)
async def test_every_other_category_is_refused_by_the_policy_table(isolated, category) -> None:
    await changed(isolated)
    claims = {"manufacturer_id": "0A1B"} if category == "MANUFACTURER" else {}
    # Even with the owner's Party id: the rule is not granted to the category at all.
    body = await isolated.gql(category, DIGEST, {"since": LONG_AGO}, party_id=OWNER, **claims)
    # `fleetDigest` is non-null (the contract's `FleetDigest!`): its null takes `data` with it.
    assert body["data"] is None
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
        ("FORBIDDEN", ["fleetDigest"])
    ]
    assert "PATHWAY_WITHDRAWN" not in str(body)


async def test_a_since_that_is_no_time_is_a_client_error(isolated) -> None:
    body = await isolated.gql("LARGE_SUPPLIER", DIGEST, {"since": "yesterday"}, party_id=OWNER)
    assert body.get("data") is None and body["errors"]


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_a_since_that_utc_cannot_hold_is_a_client_error(isolated, since) -> None:
    """Valid DateTimes whose offset takes them past year 1 or 9999 in UTC: BAD_USER_INPUT, not
    an unexpected error."""
    body = await isolated.gql("LARGE_SUPPLIER", DIGEST, {"since": since}, party_id=OWNER)
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert "out of range" in body["errors"][0]["message"]


def test_a_digests_sums_stop_at_the_largest_graphql_int() -> None:
    """Two changes each touching 2,000,000,000 meters of one fleet: the sum is the largest Int
    GraphQL can carry, not an error (a fleet holds at most that many meters)."""
    big = FleetImpactRow(
        event_id=1,
        party_id=OWNER,
        affected_meters=2_000_000_000,
        newly_blocked_meters=2_000_000_000,
        newly_upgradable_meters=5,
    )
    total = summed_impact([big, big])
    assert (total.affected, total.newly_blocked, total.newly_upgradable) == (MAX_SUM, MAX_SUM, 10)
