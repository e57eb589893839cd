"""The policy table's row scopes, applied by the one helper: who may act on whose rows.

These are the rules behind "a Manufacturer changes its own devices only" and "a Party sees its
own webhooks only"; the HTTP tests (test_mutations, test_webhooks_api) show them end to end."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models.tables import Webhook
from permissions.principal import PartyCategory, Principal
from permissions.row_scopes import NO_ROWS, row_scope


def caller(category: PartyCategory, manufacturer_id: str | None = None) -> Principal:
    return Principal("sub", f"PARTY-{category.value}", category, manufacturer_id)


def test_a_manufacturer_acts_on_its_own_devices_only() -> None:
    scope = row_scope(caller(PartyCategory.MANUFACTURER, "0A1B"), "Mutation", "addFirmware")
    assert scope.allows("0A1B")
    assert not scope.allows("0C2D")


def test_a_manufacturer_token_without_its_identifier_acts_on_nothing() -> None:
    scope = row_scope(caller(PartyCategory.MANUFACTURER), "Mutation", "addFirmware")
    assert not scope.allows("0A1B")
    assert not scope.allows(None)


def test_secas_acts_on_every_manufacturer() -> None:
    scope = row_scope(caller(PartyCategory.SECAS), "Mutation", "correctUpgradePathway")
    assert scope.allows("0A1B") and scope.allows("0C2D")
    assert scope.where(Webhook.party_id) == []


@pytest.mark.parametrize("category", [c for c in PartyCategory if c.name.endswith("SUPPLIER")])
def test_a_category_the_rule_denies_gets_no_rows(category: PartyCategory) -> None:
    assert row_scope(caller(category), "Mutation", "withdrawFirmware") is NO_ROWS
    assert not NO_ROWS.allows("0A1B")


@pytest.mark.parametrize("category", list(PartyCategory))
def test_every_party_is_held_to_its_own_webhooks(category: PartyCategory) -> None:
    principal = caller(category)
    scope = row_scope(principal, "Query", "webhooks")
    assert scope.allows(principal.party_id)
    assert not scope.allows("PARTY-SOMEONE-ELSE")
    (condition,) = scope.where(Webhook.party_id)
    sql = str(select(Webhook.id).where(condition).compile(compile_kwargs={"literal_binds": True}))
    assert f"webhook.party_id = '{principal.party_id}'" in sql


def test_no_caller_gets_no_rows() -> None:
    assert row_scope(None, "Query", "webhooks") is NO_ROWS
    (condition,) = NO_ROWS.where(Webhook.party_id)
    sql = str(select(Webhook.id).where(condition).compile(compile_kwargs={"literal_binds": True}))
    assert "false" in sql.lower() or "0 = 1" in sql
