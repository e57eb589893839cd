"""A Party's own writes (its stored fleet, by `replaceFleet` or `PUT /fleet`, its webhooks) leave
the CPL's data revision alone (`resolvers.writes.unit_of_work`, `cpl=False`): every other
Party's cached answers and ETags stay as they were, so nobody can count another's fleet uploads
or webhook changes by watching them. The answers that read a fleet (`myFleet`) are keyed on the
fleet's own revision instead, so its owner's next answer is the new fleet."""

from __future__ import annotations

import pytest

from models.tables import ChangeKind
from permissions.row_scopes import Scope
from resolvers.writes.change_log import Change
from tests.test_fleet_upload import FLEET, put
from tests.test_stored_fleets import ITEMS, MY_FLEET, replace
from tests.test_webhooks_api import DELETE, REGISTER

CPL = '{ device(id: "device:2") { modelName firmware { version } } }'
ADD_FIRMWARE = """mutation { addFirmware(input: { deviceId: "device:2", version: "CACE0003" })
  { __typename } }"""
REVISION = "SELECT revision FROM data_revision"


def get(isolated, query: str, party: str, etag: str | None = None):
    headers = {"Authorization": f"Bearer {isolated.token('LARGE_SUPPLIER', party_id=party)}"}
    if etag is not None:
        headers["If-None-Match"] = etag
    return isolated.client.get("/graphql", params={"query": query}, headers=headers)


async def own_writes(isolated, party: str) -> None:
    """Everything a Party may write that is its own: a fleet twice, a webhook and its deletion."""
    await replace(isolated, ITEMS[:1], party=party)
    stored = await put(isolated.client, FLEET, isolated.token("LARGE_SUPPLIER", party_id=party))
    assert stored.status_code == 200, stored.text
    url = {"input": {"url": "https://93.184.216.34/cpl-hooks"}}
    registered = await isolated.gql("LARGE_SUPPLIER", REGISTER, url, party_id=party)
    webhook = registered["data"]["registerWebhook"]["webhook"]["id"]
    deleted = await isolated.gql("LARGE_SUPPLIER", DELETE, {"id": webhook}, party_id=party)
    assert deleted["data"]["deleteWebhook"]["__typename"] == "DeleteWebhookSuccess"


async def test_a_partys_own_writes_leave_every_other_answer_and_etag_as_it_was(isolated):
    await replace(isolated, ITEMS[1:2], party="P-SOUTH")
    before = {query: await get(isolated, query, "P-SOUTH") for query in (CPL, MY_FLEET)}
    revision = await isolated.scalar(REVISION)

    await own_writes(isolated, "P-NORTH")

    assert await isolated.scalar(REVISION) == revision
    responses = isolated.services.responses
    for query, first in before.items():
        confirmed = await get(isolated, query, "P-SOUTH", first.headers["etag"])
        assert confirmed.status_code == 304, query
        hits = responses.hits
        again = await get(isolated, query, "P-SOUTH")
        assert responses.hits == hits + 1  # the very answer it was given, from the cache
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]


async def test_an_owners_replacement_is_in_its_next_answer_under_a_new_etag(isolated):
    await replace(isolated, ITEMS, party="P-NORTH")
    first = await get(isolated, MY_FLEET, "P-NORTH")
    assert first.json()["data"]["myFleet"]["meters"] == 1534
    assert (await get(isolated, MY_FLEET, "P-NORTH", first.headers["etag"])).status_code == 304
    revision = await isolated.scalar(REVISION)

    await replace(isolated, ITEMS[:1], party="P-NORTH")
    assert await isolated.scalar(REVISION) == revision
    assert await isolated.scalar("SELECT revision FROM stored_fleet") == 2
    stale = await get(isolated, MY_FLEET, "P-NORTH", first.headers["etag"])
    assert stale.status_code == 200 and stale.json()["data"]["myFleet"]["meters"] == 1200
    assert stale.headers["etag"] != first.headers["etag"]


async def test_a_write_of_the_cpl_still_makes_every_etag_stale(isolated):
    await replace(isolated, ITEMS, party="P-SOUTH")
    before = {query: await get(isolated, query, "P-SOUTH") for query in (CPL, MY_FLEET)}
    added = await isolated.gql("SECAS", ADD_FIRMWARE)
    assert added["data"]["addFirmware"]["__typename"] == "AddFirmwareSuccess"
    for query, first in before.items():
        stale = await get(isolated, query, "P-SOUTH", first.headers["etag"])
        assert stale.status_code == 200 and stale.headers["etag"] != first.headers["etag"]
    assert "CACE0003" in (await get(isolated, CPL, "P-SOUTH")).text


async def test_a_caller_scoped_write_may_not_change_the_cpl(isolated):
    """Its change would be in no cached answer: refused, and nothing of it is kept."""
    principal = await isolated.services.verifier.verify(isolated.token("SECAS"))
    revision = await isolated.scalar(REVISION)
    events = await isolated.scalar("SELECT count(*) FROM audit_event")

    async def write(work) -> None:
        work.log.append(Change(ChangeKind.DEVICE_ADDED, device_id=2, changes=()))

    with pytest.raises(RuntimeError, match="caller-scoped"):
        await isolated.services.writes.run(principal, Scope(every_row=True), write, cpl=False)
    assert await isolated.scalar(REVISION) == revision
    assert await isolated.scalar("SELECT count(*) FROM audit_event") == events
