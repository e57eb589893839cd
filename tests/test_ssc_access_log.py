"""The SSC data-access log: an entry per operation that read or filtered on an SSC-only value,
committed before the answer is sent (or no answer); readable by the SSC alone."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from models.demo import STACKS, VENDORS
from permissions.principal import PartyCategory, Principal
from permissions.ssc_access import SscReads
from tests.conftest import CATEGORIES
from tests.harness import log_unreachable

LOG = """query Log($after: String) { sscAccessLog(first: 2, after: $after) {
  totalCount nodes { occurredAt actorPartyId actorSub operationName fields deviceIds }
  pageInfo { hasNextPage endCursor } } }"""


def auth(isolated, sub: str = "analyst") -> dict[str, str]:
    return {"Authorization": f"Bearer {isolated.token('SSC', sub=sub)}"}


async def entries(isolated) -> list[dict]:
    body = await isolated.gql("SSC", "{ sscAccessLog(first: 500) { nodes { actorSub "
                              "operationName fields deviceIds } } }")  # fmt: skip
    return body["data"]["sscAccessLog"]["nodes"]


async def count(isolated) -> int:
    return await isolated.scalar("SELECT count(*) FROM ssc_access")


async def test_an_ssc_read_is_one_entry_naming_fields_and_devices(isolated):
    before = await count(isolated)
    body = await isolated.gql(
        "SSC",
        "query Zigbee { devices(first: 4) "
        "{ nodes { id zigbeeStackVersion zigbeeChipsetVendor } } }",
        sub="analyst-7",
        party_id="SSC-PANEL",
    )
    ids = [n["id"] for n in body["data"]["devices"]["nodes"]]
    assert len(ids) == 4
    assert await count(isolated) == before + 1  # one entry for the operation, not one a row
    newest = (await entries(isolated))[0]
    assert newest == {
        "actorSub": "analyst-7",
        "operationName": "Zigbee",
        "fields": ["Device.zigbeeChipsetVendor", "Device.zigbeeStackVersion"],
        "deviceIds": sorted(ids, key=lambda i: int(i.split(":")[1])),
    }


async def test_filtering_on_an_ssc_only_value_is_recorded_even_without_reading_it(isolated):
    vendor = (await isolated.gql("SSC", "{ devices(first: 1) { nodes { zigbeeChipsetVendor } } }"))[
        "data"
    ]["devices"]["nodes"][0]["zigbeeChipsetVendor"]
    body = await isolated.gql(
        "SSC",
        "query ByVendor($v: String) { devices(filter: {zigbeeChipsetVendor: $v}) "
        "{ totalCount nodes { id } } }",
        {"v": vendor},
        sub="analyst-8",
    )
    ids = {n["id"] for n in body["data"]["devices"]["nodes"]}
    newest = (await entries(isolated))[0]
    assert newest["actorSub"] == "analyst-8" and newest["operationName"] == "ByVendor"
    assert newest["fields"] == ["DeviceFilter.zigbeeChipsetVendor"]
    assert set(newest["deviceIds"]) == ids and ids


async def test_reading_ssc_only_values_through_history_is_recorded(isolated):
    body = await isolated.gql(
        "SSC",
        'query History { device(id: "device:1") { history { changes { field after redacted } } } }',
        sub="analyst-9",
    )
    changes = [c for e in body["data"]["device"]["history"] for c in e["changes"]]
    assert any(c["field"] == "zigbeeStackVersion" and not c["redacted"] for c in changes)
    newest = (await entries(isolated))[0]
    assert newest["actorSub"] == "analyst-9"
    assert "Device.zigbeeStackVersion" in newest["fields"] and newest["deviceIds"] == ["device:1"]


@pytest.mark.parametrize("category", [c for c in CATEGORIES if c != "SSC"])
async def test_what_others_are_denied_is_not_a_read(isolated, category):
    before = await count(isolated)
    await isolated.gql(category, "{ devices { nodes { zigbeeStackVersion zigbeeChipsetVendor } } }")
    await isolated.gql(category, '{ device(id: "device:1") { history { changes { after } } } }')
    assert await count(isolated) == before


async def test_public_fields_read_by_the_ssc_are_not_logged(isolated):
    before = await count(isolated)
    await isolated.gql("SSC", "{ devices { nodes { id modelName zigbeeBand } } }")
    assert await count(isolated) == before


async def test_the_log_is_for_the_ssc_only(isolated):
    await isolated.gql("SSC", "{ devices(first: 2) { nodes { zigbeeStackVersion } } }")
    for category in CATEGORIES:
        body = await isolated.gql(category, LOG)
        if category == "SSC":
            assert "errors" not in body
            assert body["data"]["sscAccessLog"]["totalCount"] == await count(isolated) > 0
        else:
            assert body["data"] is None
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_log_pages_newest_first(isolated):
    for n in range(3):
        await isolated.gql(
            "SSC", f"query Read{n} {{ devices(first: 1) {{ nodes {{ zigbeeStackVersion }} }} }}"
        )
    first = (await isolated.gql("SSC", LOG))["data"]["sscAccessLog"]
    assert [e["operationName"] for e in first["nodes"]] == ["Read2", "Read1"]
    assert first["pageInfo"]["hasNextPage"]
    second = (await isolated.gql("SSC", LOG, {"after": first["pageInfo"]["endCursor"]}))["data"]
    assert second["sscAccessLog"]["nodes"][0]["operationName"] == "Read0"


async def test_entries_hold_no_ssc_only_value(isolated):
    await isolated.gql("SSC", "{ devices { nodes { zigbeeStackVersion zigbeeChipsetVendor } } }")
    async with isolated.services.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM ssc_access"))).all()
        values = (
            await connection.execute(
                text("SELECT zigbee_stack_version, zigbee_chipset_vendor FROM device")
            )
        ).all()
    dumped = repr(rows)
    assert rows and not any(v and v in dumped for pair in values for v in pair)


def readme_examples() -> list[str]:
    """The README's sscAccessLog documents: the GraphQL block and the curl example's query."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    documents = [line for line in readme.splitlines() if line.startswith("{ sscAccessLog(")]
    for line in readme.splitlines():
        if line.startswith('q "$(.venv/bin/cpl-pathways token SSC)"') and "sscAccessLog" in line:
            documents.append(json.loads(line.split("'")[1])["query"])
    return documents


async def test_the_readme_examples_run(isolated):
    examples = readme_examples()
    assert len(examples) == 2
    await isolated.gql("SSC", "query Seen { devices(first: 1) { nodes { zigbeeChipsetVendor } } }")
    for document in examples:
        body = await isolated.gql("SSC", document)
        assert "errors" not in body and body["data"]["sscAccessLog"]["nodes"]
        denied = await isolated.gql("SECAS", document)
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_answer_served_from_the_response_cache_is_logged_as_a_read_too(isolated):
    query = "query Again { devices(first: 3) { nodes { id zigbeeChipsetVendor } } }"
    first = await isolated.gql("SSC", query, sub="analyst-cache")
    hits = isolated.services.responses.hits
    before = await count(isolated)
    second = await isolated.gql("SSC", query, sub="analyst-cache-2")
    assert second == first and isolated.services.responses.hits == hits + 1
    assert await count(isolated) == before + 1
    newest = (await entries(isolated))[0]
    assert newest["actorSub"] == "analyst-cache-2" and newest["operationName"] == "Again"
    assert newest["fields"] == ["Device.zigbeeChipsetVendor"] and len(newest["deviceIds"]) == 3


async def test_an_answers_entry_is_committed_when_the_response_arrives(isolated):
    """No drain, no wait: the entry is in the database, read by a connection of its own, as
    soon as the client holds the SSC's answer."""
    before = await isolated.scalar("SELECT count(*) FROM ssc_access")
    body = await isolated.gql(
        "SSC", "query Now { devices(first: 2) { nodes { id zigbeeStackVersion } } }", sub="a-1"
    )
    assert len(body["data"]["devices"]["nodes"]) == 2
    assert await isolated.scalar("SELECT count(*) FROM ssc_access") == before + 1
    newest = "SELECT actor_sub FROM ssc_access ORDER BY id DESC LIMIT 1"
    assert await isolated.scalar(newest) == "a-1"


async def test_a_filter_given_by_a_variables_default_is_recorded(isolated):
    """The SSC-only filter value comes from the document's variable default, no variables
    sent: it is still a filter on the value, recorded with the devices it found."""
    vendor = VENDORS[0]
    body = await isolated.gql(
        "SSC",
        f"query ByDefault($f: DeviceFilter = {{zigbeeChipsetVendor: {json.dumps(vendor)}}}) "
        "{ devices(filter: $f) { nodes { id } } }",
        sub="analyst-default",
    )
    ids = {n["id"] for n in body["data"]["devices"]["nodes"]}
    assert ids
    newest = (await entries(isolated))[0]
    assert newest["actorSub"] == "analyst-default" and newest["operationName"] == "ByDefault"
    assert newest["fields"] == ["DeviceFilter.zigbeeChipsetVendor"]
    assert set(newest["deviceIds"]) == ids


async def test_a_304_revalidation_of_an_ssc_answer_is_logged_as_a_read(isolated):
    """Confirming the client's copy lets it read the values again: an entry, as a hit."""
    params = {"query": "query Kept { devices(first: 2) { nodes { id zigbeeChipsetVendor } } }"}
    first = await isolated.client.get("/graphql", params=params, headers=auth(isolated, "a-first"))
    assert first.status_code == 200
    before = await count(isolated)
    again = await isolated.client.get(
        "/graphql",
        params=params,
        headers={**auth(isolated, "a-again"), "If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""
    assert await count(isolated) == before + 1
    newest = (await entries(isolated))[0]
    assert newest["actorSub"] == "a-again" and newest["operationName"] == "Kept"
    assert newest["fields"] == ["Device.zigbeeChipsetVendor"] and len(newest["deviceIds"]) == 2


async def test_entries_arriving_together_share_one_statement(isolated, monkeypatch):
    """Group commit: the first entry is written at once, by its caller; the 99 that arrive
    while it is written go together in the next INSERT; every caller returns once its own
    entry is committed."""
    log = isolated.services.access_log
    appended: list[int] = []
    append = log.appender.append

    async def counted(array: str) -> None:
        appended.append(len(json.loads(array)))
        await append(array)

    monkeypatch.setattr(log.appender, "append", counted)
    before = await count(isolated)
    who = Principal("analyst-burst", "SSC-PANEL", PartyCategory.SSC)
    reads = SscReads(fields={"Device.zigbeeChipsetVendor"}, device_ids={1})
    assert all(await asyncio.gather(*(log.record(who, reads) for _ in range(100))))
    assert await count(isolated) == before + 100
    assert appended == [1, 99]


async def test_without_the_log_an_ssc_answer_is_a_503_without_its_values(isolated, caplog):
    before = await count(isolated)
    caplog.set_level(logging.WARNING)
    query = "{ devices(first: 3) { nodes { id zigbeeStackVersion zigbeeChipsetVendor } } }"
    ssc = auth(isolated, "analyst-down")
    async with log_unreachable(isolated):
        posted = await isolated.client.post("/graphql", json={"query": query}, headers=ssc)
        got = await isolated.client.get("/graphql", params={"query": query}, headers=ssc)
        public = await isolated.gql("SSC", "{ devices(first: 3) { nodes { id modelName } } }")
    for response in (posted, got):
        assert (response.status_code, response.headers["retry-after"]) == (503, "5")
        assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert not any(v in response.text for v in (*VENDORS, *STACKS))
    assert len(public["data"]["devices"]["nodes"]) == 3  # nothing to log, nothing refused
    assert await count(isolated) == before
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 2 and all("1 entries not written" in line for line in warned)
    assert "Traceback" not in caplog.text


async def test_without_the_log_a_cached_ssc_answer_is_not_served_either(isolated):
    params = {"query": "query Cached { devices(first: 3) { nodes { id zigbeeChipsetVendor } } }"}
    first = await isolated.client.get("/graphql", params=params, headers=auth(isolated))
    assert first.status_code == 200 and any(v in first.text for v in VENDORS)
    hits = isolated.services.responses.hits
    revalidate = {**auth(isolated), "If-None-Match": first.headers["etag"]}
    async with log_unreachable(isolated):
        hit = await isolated.client.get("/graphql", params=params, headers=auth(isolated))
        revalidated = await isolated.client.get("/graphql", params=params, headers=revalidate)
    assert isolated.services.responses.hits == hits + 2
    for response in (hit, revalidated):
        assert response.status_code == 503
        assert not any(v in response.text for v in VENDORS)
