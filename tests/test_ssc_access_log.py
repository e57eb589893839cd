"""The SSC data-access log: an entry per operation that read or filtered on an SSC-only value,
written after the response; readable by the SSC alone."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import event, text

from permissions.principal import PartyCategory, Principal
from resolvers.ssc_access import SscReads
from schema.app import create_services
from tests.conftest import CATEGORIES

LOG = """query Log($after: String) { sscAccessLog(first: 2, after: $after) {
  totalCount nodes { occurredAt actorPartyId actorSub operationName fields deviceIds }
  pageInfo { hasNextPage endCursor } } }"""


async def entries(isolated) -> list[dict]:
    await isolated.services.access_log.drain()
    body = await isolated.gql("SSC", "{ sscAccessLog(first: 500) { nodes { actorSub "
                              "operationName fields deviceIds } } }")  # fmt: skip
    return body["data"]["sscAccessLog"]["nodes"]


async def count(isolated) -> int:
    await isolated.services.access_log.drain()
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
    for category in CATEGORIES:
        body = await isolated.gql(category, LOG)
        if category == "SSC":
            assert body["data"]["sscAccessLog"]["totalCount"] >= 0 and "errors" not in body
        else:
            assert body["data"] is None
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_log_pages_newest_first(isolated):
    for n in range(3):
        await isolated.gql(
            "SSC", f"query Read{n} {{ devices(first: 1) {{ nodes {{ zigbeeStackVersion }} }} }}"
        )
    await isolated.services.access_log.drain()
    first = (await isolated.gql("SSC", LOG))["data"]["sscAccessLog"]
    assert [e["operationName"] for e in first["nodes"]] == ["Read2", "Read1"]
    assert first["pageInfo"]["hasNextPage"]
    second = (await isolated.gql("SSC", LOG, {"after": first["pageInfo"]["endCursor"]}))["data"]
    assert second["sscAccessLog"]["nodes"][0]["operationName"] == "Read0"


async def test_entries_hold_no_ssc_only_value(isolated):
    await isolated.gql("SSC", "{ devices { nodes { zigbeeStackVersion zigbeeChipsetVendor } } }")
    await isolated.services.access_log.drain()
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
    await isolated.services.access_log.drain()
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


async def test_entries_coming_all_the_time_share_a_statement_a_flush_delay(isolated):
    """Under load the entries of a flush delay share one INSERT. Written back to back as they
    came, a few at a time, each would pay a transaction of its own."""
    inserts: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        if statement.startswith("INSERT INTO ssc_access"):
            inserts.append(statement)

    before = await count(isolated)
    engine = isolated.services.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        who = Principal("analyst-burst", "SSC-PANEL", PartyCategory.SSC)
        reads = SscReads(fields={"Device.zigbeeChipsetVendor"}, device_ids={1})
        started = time.monotonic()
        for _ in range(300):  # an entry about every millisecond
            isolated.services.access_log.record(who, reads)
            await asyncio.sleep(0.001)
        elapsed = time.monotonic() - started
        assert await count(isolated) == before + 300
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert 1 <= len(inserts) <= elapsed / isolated.services.access_log.delay + 2


async def test_an_entry_waits_the_configured_delay_before_it_is_written(isolated):
    """`CPL_SSC_ACCESS_LOG_DELAY_MS`: entries wait that long for the ones coming after them."""
    before = await count(isolated)
    services = create_services(
        replace(isolated.services.settings, ssc_access_log_delay_seconds=0.6)
    )
    try:
        who = Principal("analyst-slow", "SSC-PANEL", PartyCategory.SSC)
        services.access_log.record(who, SscReads(fields={"Device.zigbeeChipsetVendor"}))
        await asyncio.sleep(0.3)
        assert await isolated.scalar("SELECT count(*) FROM ssc_access") == before
        await asyncio.sleep(0.6)
        assert await isolated.scalar("SELECT count(*) FROM ssc_access") == before + 1
    finally:
        await services.access_log.drain()
        await services.engine.dispose()
