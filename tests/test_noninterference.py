"""Noninterference: two databases that differ only in the SSC-only values (`tests/twins.py`)
give every non-SSC caller the same bytes, instants aside, by every road; the SSC sees the
difference, so the comparison can fail.

A road is one line of `ROADS`. Documents generated from the schema join them: bounded for
`make test`; `CPL_NONINTERFERENCE_EXAMPLES=2000 make test-sqlite` runs longer."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import hypothesis_graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes

import permissions.strawberry_adapter
import schema.query
import server.graphql_view
from models.database import session_factory
from models.demo import STACKS, VENDORS, demo_devices
from permissions.document_policy import decide
from permissions.principal import PartyCategory
from permissions.ssc_access import Operator
from resolvers.files.cpl_export import export
from schema.build import sdl
from tests.harness import create_database
from tests.test_fuzz import SCALARS
from tests.twins import (
    OTHER,
    Answer,
    Twin,
    observed,
    rows,
    ssc_values_hidden,
    twins,
    webhook_bodies,
    without_instants,
)

PARTIES = [category.value for category in PartyCategory if category is not PartyCategory.SSC]
EXAMPLES = int(os.environ.get("CPL_NONINTERFERENCE_EXAMPLES", "40"))

# A road: how one caller (its token; the SSC's token for what the SSC does first) asks.
Send = Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]


def party(token: Callable[..., str], category: str) -> str:
    """A token of `category`; a Manufacturer's is the maker of device:1 to device:4."""
    return token(category, **({"manufacturer_id": "0A1B"} if category == "MANUFACTURER" else {}))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(query: str, variables: dict | None = None) -> Send:
    async def send(client: httpx.AsyncClient, token: str, ssc: str) -> httpx.Response:
        body = {"query": query} | ({"variables": variables} if variables is not None else {})
        return await client.post("/graphql", json=body, headers=bearer(token))

    return send


def get(query: str) -> Send:
    async def send(client: httpx.AsyncClient, token: str, ssc: str) -> httpx.Response:
        return await client.get("/graphql", params={"query": query}, headers=bearer(token))

    return send


def warmed(query: str) -> Send:
    """The SSC asks first, so that its answer is in the response cache."""

    async def send(client: httpx.AsyncClient, token: str, ssc: str) -> httpx.Response:
        await post(query)(client, ssc, ssc)
        return await post(query)(client, token, ssc)

    return send


def asked_again(query: str, first: dict | None = None, then: dict | None = None) -> Send:
    """The caller asks `query` twice, with two sets of variables (a page's size `$n` 50, then
    49, unless given), so that the response cache misses and the second runs by the plan the
    first left (`schema.direct`), over the rows' kept answers, its denials placed on the
    copies kept from the first (`apply_denials`)."""

    async def send(client: httpx.AsyncClient, token: str, ssc: str) -> httpx.Response:
        await post(query, first or {"n": 50})(client, token, ssc)
        return await post(query, then or {"n": 49})(client, token, ssc)

    return send


def persisted(query: str) -> Send:
    """The SSC registers the document (APQ); the caller sends its hash only."""
    digest = hashlib.sha256(query.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    async def send(client: httpx.AsyncClient, token: str, ssc: str) -> httpx.Response:
        body = {"query": query, "extensions": extensions}
        await client.post("/graphql", json=body, headers=bearer(ssc))
        return await client.post("/graphql", json={"extensions": extensions}, headers=bearer(token))

    return send


def fleet_csv(body: str, path: str = "/fleet-plan.csv") -> Send:
    async def send(client: httpx.AsyncClient, token: str, ssc: str) -> httpx.Response:
        headers = bearer(token) | {"Content-Type": "text/csv"}
        return await client.post(path, content=body, headers=headers)

    return send


@dataclass(frozen=True)
class Road:
    name: str
    send: Send
    ssc_differs: bool = True  # the SSC's answers differ: the road reaches the SSC-only values
    # The caller's view of the CPL holds the road by itself; False for a root field that only
    # the SSC may run (the document pass refuses it): what it answers is not the CPL.
    by_the_view: bool = True


PAGE = "{ totalCount nodes { id } }"


def filtered(field: str, value: str) -> str:
    """A page of the devices whose `field` (a DeviceFilter field) is `value`."""
    return f'{{ devices(filter: {{{field}: "{value}"}}) {PAGE} }}'


PAGE_INFO = "pageInfo { hasPreviousPage hasNextPage startCursor endCursor }"
GAP_AFTER_6 = "Z2FwOjY"  # a cursor: the place between device:6 and device:7 (`gap:6`)
VENDOR, STACK = "Lumen Silicon", "ZB-SUBGHZ 1.4"  # each on other devices in the twin, or none
NOWHERE = "Nobody's Silicon"  # on no device of either
HISTORY = "history { action reason changes { field before after redacted } }"
PLAN = "{{ fleetPlan(items: [{item}]) {{ entries {{ device {{ id zigbeeChipsetVendor }} problem plan {{ reachable steps {{ id }} }} }} summary {{ meters blocked }} }} }}"  # noqa: E501
CSV = "group_id,manufacturer_identifier,model_identifier,hardware_version,firmware_version,meter_count\na,0A1B,1000,0100,7F000000,5\nb,0A1B,1222,0100,7F020000,2\nc,0A1B,1222,0100,00000000,1\n"  # noqa: E501

# fmt: off
ROADS = [
    Road("vendor filter inline", post(filtered("zigbeeChipsetVendor", VENDOR))),
    Road("stack filter inline", post(filtered("zigbeeStackVersion", STACK))),
    Road("vendor filter matching nothing", post(filtered("zigbeeChipsetVendor", NOWHERE)), ssc_differs=False),  # noqa: E501
    Road("vendor filter in an object variable's default", post(f'query($f: DeviceFilter = {{zigbeeChipsetVendor: "{VENDOR}"}}) {{ devices(filter: $f) {PAGE} }}')),  # noqa: E501
    Road("stack filter in an object variable's default", post(f'query($f: DeviceFilter = {{zigbeeStackVersion: "{STACK}"}}) {{ devices(filter: $f) {PAGE} }}')),  # noqa: E501
    Road("vendor filter from a scalar variable's default", post(f'query($v: String = "{VENDOR}") {{ devices(filter: {{zigbeeChipsetVendor: $v}}) {PAGE} }}')),  # noqa: E501
    Road("stack filter from a scalar variable's default", post(f'query($v: String = "{STACK}") {{ devices(filter: {{zigbeeStackVersion: $v}}) {PAGE} }}')),  # noqa: E501
    Road("vendor filter from a scalar variable", post(f"query($v: String) {{ devices(filter: {{zigbeeChipsetVendor: $v}}) {PAGE} }}", {"v": VENDOR})),  # noqa: E501
    Road("filter object from a variable", post(f"query($f: DeviceFilter) {{ devices(filter: $f) {PAGE} }}", {"f": {"manufacturerIdentifier": "0A1B", "zigbeeStackVersion": STACK}})),  # noqa: E501
    Road("vendor beside public fields in a nested input", post(f'{{ devices(filter: {{manufacturerIdentifier: "0A1B", deviceType: ESME, zigbeeChipsetVendor: "{VENDOR}"}}) {PAGE} }}')),  # noqa: E501
    Road("vendor filter under @include of a default", post(f'query($on: Boolean = true, $f: DeviceFilter = {{zigbeeChipsetVendor: "{VENDOR}"}}) {{ devices(filter: $f) @include(if: $on) {PAGE} }}')),  # noqa: E501
    Road("vendor filter under @skip of a default", post(f'query($off: Boolean = false) {{ devices(filter: {{zigbeeChipsetVendor: "{VENDOR}"}}) @skip(if: $off) {PAGE} }}')),  # noqa: E501
    Road("vendor filter by GET", get(filtered("zigbeeChipsetVendor", VENDOR))),
    Road("vendor filter paged backwards", post(f'{{ devices(filter: {{zigbeeChipsetVendor: "{VENDOR}"}}, last: 1, before: "{GAP_AFTER_6}") {{ totalCount nodes {{ id }} {PAGE_INFO} }} }}')),  # noqa: E501
    Road("stack filter paged from an empty page", post(f'{{ devices(filter: {{zigbeeStackVersion: "{STACK}"}}, first: 0, after: "{GAP_AFTER_6}") {{ totalCount {PAGE_INFO} }} }}')),  # noqa: E501
    Road("fields by a named fragment", post("{ devices { nodes { id ...z } } } fragment z on Device { zigbeeChipsetVendor zigbeeStackVersion }")),  # noqa: E501
    Road("fields by an inline fragment", post("{ devices { nodes { id ... on Device { zigbeeStackVersion } } } }")),  # noqa: E501
    Road("fields under aliases", post('{ d: device(id: "device:1") { v: zigbeeChipsetVendor s: zigbeeStackVersion n: modelName } }')),  # noqa: E501
    Road("fields under @include of a default", post("query($on: Boolean = true) { devices { nodes { id zigbeeChipsetVendor @include(if: $on) } } }")),  # noqa: E501
    Road("fields under @skip of a default", post("query($off: Boolean = false) { devices { nodes { id zigbeeStackVersion @skip(if: $off) } } }")),  # noqa: E501
    Road("fields through a manufacturer", post("{ manufacturers { devices { id zigbeeChipsetVendor } } }")),  # noqa: E501
    Road("fields through an upgrade path", post('{ upgradePath(deviceId: "device:1", fromVersion: "7F000000") { device { zigbeeStackVersion } steps { device { zigbeeChipsetVendor } } } }')),  # noqa: E501
    Road("device history", post(f'{{ device(id: "device:1") {{ {HISTORY} }} }}')),
    Road("every device's history", post(f"{{ devices {{ nodes {{ id {HISTORY} }} }} }}")),
    Road("firmware's device history", post(f'{{ firmware(id: "firmware:1") {{ device {{ {HISTORY} }} }} }}')),  # noqa: E501
    Road("audit events", post("{ auditEvents(first: 50) { totalCount nodes { id action reason changes { field before after redacted } } } }")),  # noqa: E501
    Road("audit events of a device", post('{ auditEvents(deviceId: "device:3", action: DEVICE_ADDED) { nodes { reason changes { field after redacted } } } }')),  # noqa: E501
    Road("a persisted query the SSC registered", persisted(f'{{ devices(filter: {{zigbeeChipsetVendor: "{VENDOR}"}}) {{ nodes {{ id zigbeeStackVersion }} }} }}')),  # noqa: E501
    Road("an answer the SSC put in the cache", warmed("{ devices { nodes { id zigbeeChipsetVendor zigbeeStackVersion } } }")),  # noqa: E501
    Road("a filter the SSC put in the cache", warmed(filtered("zigbeeStackVersion", STACK))),
    Road("rows' answers the SSC's page kept", warmed("{ devices { nodes { id manufacturer { name } latestFirmware { version zigbeeStackVersion } zigbeeChipsetVendor } } }")),  # noqa: E501
    Road("a denied page's nulls kept and placed again", asked_again("query($n: Int) { devices(first: $n) { nodes { id modelName zigbeeChipsetVendor firmware { version } zigbeeStackVersion } } }")),  # noqa: E501
    Road("a vendor filter in a variable, asked again by its plan", asked_again(f"query($f: DeviceFilter) {{ devices(filter: $f) {PAGE} }}", {"f": {"manufacturerIdentifier": "0A1B"}}, {"f": {"zigbeeChipsetVendor": VENDOR}})),  # noqa: E501
    Road("fleet plan by device", post(PLAN.format(item='{deviceId: "device:3", firmwareVersion: "7F020000"}'))),  # noqa: E501
    Road("fleet plan by model", post(PLAN.format(item='{manufacturerIdentifier: "0A1B", modelIdentifier: "1000", hardwareVersion: "0100", firmwareVersion: "7F000000", meterCount: 9}'))),  # noqa: E501
    Road("fleet plan file", fleet_csv(CSV), ssc_differs=False),
    Road("fleet plan file's summary", fleet_csv(CSV, "/fleet-plan.csv?summary=true"), ssc_differs=False),  # noqa: E501
    Road("a filter value of the wrong type", post("{ devices(filter: {zigbeeChipsetVendor: 7}) { totalCount } }"), ssc_differs=False),  # noqa: E501
    Road("a filter object variable with an unknown field", post("query($f: DeviceFilter) { devices(filter: $f) { totalCount } }", {"f": {"zigbeeChipsetVendor": VENDOR, "nope": 1}}), ssc_differs=False),  # noqa: E501
    Road("firmware's own stack", post('{ firmware(id: "firmware:4") { zigbeeStackVersion } device(id: "device:1") { firmware { zigbeeStackVersion } } }')),  # noqa: E501
    Road("an entry's stack by its id", post('{ cplEntry(id: "cpl-0001-04") { cplEntryId predecessors zigbeeStackVersion device { zigbeeStackVersion } } }')),  # noqa: E501
    Road("the stack search by prefix", post('{ firmwareByZigbeeStack(stackVersion: "zb-pro 2017", match: PREFIX) { id version } }')),  # noqa: E501
    Road("the stack search, exact", post(f'{{ firmwareByZigbeeStack(stackVersion: "{STACK.lower()}") {{ id }} }}')),  # noqa: E501
    Road("the stack search from a variable's default", post('query($m: TextMatch = PREFIX) { firmwareByZigbeeStack(stackVersion: "ZB", match: $m) { id zigbeeStackVersion } }')),  # noqa: E501
    Road("a prefix filter", post(f'{{ devices(filter: {{zigbeeStackVersion: "zb-pro", zigbeeMatch: PREFIX}}) {PAGE} }}')),  # noqa: E501
    Road("a case-free vendor filter", post(filtered("zigbeeChipsetVendor", VENDOR.upper()))),
    Road("a prefix filter in a variable", post(f"query($f: DeviceFilter) {{ devices(filter: $f) {PAGE} }}", {"f": {"zigbeeChipsetVendor": "lumen", "zigbeeMatch": "PREFIX"}})),  # noqa: E501
    Road("the match alone", post(f"{{ devices(filter: {{zigbeeMatch: EXACT_IGNORE_CASE}}) {PAGE} }}"), ssc_differs=False),  # noqa: E501
    Road("a blocked plan's contact", post('{ upgradePath(deviceId: "device:12", fromVersion: "7F0B0002") { reason contact target { zigbeeStackVersion } } }')),  # noqa: E501
    Road("blocked meters by reason", post('{ fleetPlan(items: [{deviceId: "device:12", firmwareVersion: "7F0B0002", meterCount: 3}, {deviceId: "device:1", firmwareVersion: "7F000000"}]) { summary { blockedByReason { reason meters } } entries { plan { contact target { zigbeeStackVersion } } } } }')),  # noqa: E501
    Road("the SSC access log", post("{ sscAccessLog { totalCount nodes { fields deviceIds } } }"), ssc_differs=False, by_the_view=False),  # noqa: E501
    Road("a premises plan", post('{ premisesPlan(devices: [{deviceId: "device:9", firmwareVersion: "7F080002"}, {deviceId: "device:11", firmwareVersion: "640A0302"}, {deviceId: "device:8", firmwareVersion: "64070301"}]) { steps { order waitsFor device { zigbeeChipsetVendor } } blocked { detail device { zigbeeStackVersion } } } }')),  # noqa: E501
    Road("a firmware's prerequisites", post('{ firmware(id: "firmware:45") { prerequisites { requiresAnyOfFirmware { device { zigbeeStackVersion } } history { changes { field after redacted } } } } }')),  # noqa: E501
    Road("a fleet of premises", post('{ fleetPlan(items: [], premises: [{devices: [{deviceId: "device:9", firmwareVersion: "7F080002"}, {deviceId: "device:11", firmwareVersion: "640A0302"}], premisesCount: 4}]) { summary { meters premises metersBlockedByPrerequisites } premises { plan { steps { device { zigbeeChipsetVendor } } } } } }')),  # noqa: E501
    Road("a fleet file of premises", fleet_csv("premises,premises_count\n\"device:9=7F080002;device:8=64070301\",3\n"), ssc_differs=False),  # noqa: E501
]
# fmt: on


@pytest.fixture(scope="module")
async def pair(settings, template, other_template, tmp_path_factory, spent):
    """The twins every read road shares: the same reads, in the same order, on both."""
    directory = tmp_path_factory.mktemp("twins")
    async with twins(settings, directory, (template, other_template), spent) as both:
        yield both


async def answers(pair: tuple[Twin, Twin], send: Send, token: str, ssc: str) -> list[Answer]:
    return [observed(await send(twin.client, token, ssc)) for twin in pair]


async def test_the_twins_differ_in_the_ssc_only_values_and_nothing_else(
    template, other_template, tmp_path: Path, spent: list[str]
) -> None:
    urls = [await create_database(tmp_path, template=t) for t in (template, other_template)]
    spent.extend(urls)
    demo, other = [await rows(url) for url in urls]
    assert demo["device"] and demo["audit_event"] and demo["upgrade_pathway"]
    assert ssc_values_hidden(demo) == ssc_values_hidden(other)
    assert demo["device"] != other["device"] and demo["audit_event"] != other["audit_event"]
    assert demo["firmware"] != other["firmware"]  # the firmware's own stack versions too


def transparent(schema: Any, document: Any, operation_name: str | None, category: Any) -> Any:
    """A decision that denies nothing and restricts no argument: the document as it came."""
    decision = decide(schema, document, operation_name, category)
    if decision is None:
        return None
    return replace(decision, document=document, stand_ins={}, leads=frozenset(), arguments=())


@pytest.fixture(params=["every layer", "the view alone"])
def layers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, pair) -> str:
    """'the view alone': the document pass neither replaces denied fields nor refuses
    restricted arguments, and the search refuses no filter. What is left is the caller's view
    of the CPL (`CplSnapshot.view`), which must by itself give the same bytes: the property
    holds by construction, not by the pass in front (with the view bypassed too, this fails).
    The response cache is off meanwhile: its answers were made with every layer standing."""
    if request.param == "the view alone":
        # Decided where execution decides, and where the HTTP view does for the cache key and
        # a query's plan (`schema.direct`): nothing denied, no argument restricted.
        for where in (permissions.strawberry_adapter, server.graphql_view):
            monkeypatch.setattr(where, "decide", transparent)
        monkeypatch.setattr(schema.query, "refuse_restricted_input", lambda *_: None)
        for twin in pair:  # answers kept while every layer stood are not the view's alone
            monkeypatch.setattr(twin.services.responses, "max_bytes", 0)
    return request.param


@pytest.mark.parametrize("category", PARTIES)
@pytest.mark.parametrize("road", ROADS, ids=lambda road: road.name)
async def test_every_road_gives_every_party_the_same_bytes(
    pair, token, road, category, layers
) -> None:
    if layers == "the view alone" and not road.by_the_view:
        pytest.skip("a root field only the SSC may run: the document pass refuses it")
    caller = party(token, category)
    demo, other = await answers(pair, road.send, caller, token("SSC"))
    assert demo.status < 500 and b"Unexpected error." not in demo.body
    assert demo == other


@pytest.mark.parametrize(
    "road", [road for road in ROADS if road.ssc_differs], ids=lambda road: road.name
)
async def test_the_ssc_sees_the_difference(pair, token, road) -> None:
    demo, other = await answers(pair, road.send, token("SSC"), token("SSC"))
    assert demo.status == 200 and b'"errors"' not in demo.body, demo.body
    assert demo != other


@pytest.mark.parametrize("category", PARTIES)
async def test_a_filter_value_that_matches_devices_and_one_that_matches_none_look_alike(
    pair, token, category
) -> None:
    caller = party(token, category)
    seen = [
        await answers(pair, post(filtered("zigbeeChipsetVendor", value)), caller, caller)
        for value in (VENDOR, NOWHERE)
    ]
    assert seen[0] == seen[1]


def demo_words() -> tuple[list[str], list[str]]:
    """Ids and strings that name real rows of the twins, and both twins' SSC-only values, so
    that generated queries reach data (and restricted filters match) often, not by luck."""
    devices = demo_devices()
    ids = [f"{kind}:{n}" for kind in ("device", "firmware", "pathway") for n in (1, 2, 3, 12)]
    words = [*VENDORS, *STACKS, *OTHER["vendors"], *OTHER["stacks"], "0A1B", "0100"]
    words += ["ZB-PRO", "zb-pro 2017 r22 p1", "CPL-0001-04", "cpl-0012-03"]
    for device in devices[:3]:
        words += [device.model_identifier, device.firmware[0][0], device.firmware[-1][0]]
    return ids, words


IDS, WORDS = demo_words()
QUERIES = hypothesis_graphql.queries(
    sdl(),
    custom_scalars={
        **SCALARS,
        "ID": st.sampled_from(IDS).map(nodes.String) | st.integers().map(nodes.Int),
        "String": st.sampled_from(WORDS).map(nodes.String) | st.text().map(nodes.String),
    },
)
CORPUS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@CORPUS
@given(query=QUERIES, category=st.sampled_from(PARTIES))
async def test_generated_queries_give_every_party_the_same_bytes(
    pair, token, query, category
) -> None:
    caller = party(token, category)
    demo, other = await answers(pair, post(query), caller, caller)
    assert demo == other, query


async def test_the_export_without_ssc_values_is_the_same_file(pair) -> None:
    for what in ("devices", "pathways"):
        files = {}
        for include_ssc in (False, True):
            written = []
            for twin in pair:
                out = io.StringIO()
                sessions = session_factory(twin.services.engine)
                actor = Operator("cli:test", "export:noninterference")
                await export(sessions, what, out, include_ssc=include_ssc, actor=actor)
                written.append(without_instants(out.getvalue().encode()))
            files[include_ssc] = written
        assert files[False][0] == files[False][1]
        assert (files[True][0] != files[True][1]) == (what == "devices")


async def test_every_webhook_body_is_the_same(pair) -> None:
    demo, other = [await webhook_bodies(twin) for twin in pair]
    assert len(demo) == 12 and demo == other  # the seed's DEVICE_ADDED events
