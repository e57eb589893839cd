"""Fuzzing: documents generated from the schema (hypothesis-graphql, valid and invalid) and
arbitrary JSON variables, sent over HTTP by every Party category. Whatever comes in: no HTTP
500, no `Unexpected error.`, no error logged, no SSC-only value in a non-SSC answer.

Bounded for `make test`; `CPL_FUZZ_EXAMPLES=2000 make test-sqlite` runs longer."""

from __future__ import annotations

import json
import logging
import os

import hypothesis_graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes

from models.demo import STACKS, VENDORS
from permissions.principal import PartyCategory
from schema.build import sdl

EXAMPLES = int(os.environ.get("CPL_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SSC_ONLY_VALUES = [*VENDORS, *STACKS]
SCALARS = {
    "Date": st.dates().map(lambda day: nodes.String(day.isoformat())),
    "DateTime": st.datetimes().map(lambda moment: nodes.String(moment.isoformat() + "Z")),
}
SCHEMA = sdl()
DOCUMENTS = st.one_of(
    hypothesis_graphql.from_schema(SCHEMA, custom_scalars=SCALARS),
    hypothesis_graphql.from_schema(
        SCHEMA, custom_scalars=SCALARS, mode=hypothesis_graphql.Mode.NEGATIVE
    ),
)
CATEGORIES = st.sampled_from([category.value for category in PartyCategory])
# Every kind of string, lone surrogates included, and JSON of any shape around them.
TEXT = st.text(st.characters(codec=None), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
OPERATIONS_WITH_VARIABLES = [
    "query($f: DeviceFilter, $n: Int, $a: String) { devices(filter: $f, first: $n, after: $a) {"
    " totalCount nodes { id zigbeeBand zigbeeStackVersion zigbeeChipsetVendor } } }",
    "query($d: ID!, $f: String!, $t: String) { upgradePath(deviceId: $d, fromVersion: $f,"
    " toVersion: $t) { reachable reason steps { id } } }",
    "query($i: [FleetItemInput!]!) { fleetPlan(items: $i) { summary { meters blocked } } }",
    "mutation($input: SetZigbeeInformationInput!) { setZigbeeInformation(input: $input) {"
    " __typename } }",
    "mutation($input: AddDeviceInput!) { addDevice(input: $input) { __typename } }",
]
VARIABLE_NAMES = st.sampled_from(["f", "n", "a", "d", "t", "i", "input"])


def check_answer(response, category: str, caplog: pytest.LogCaptureFixture) -> None:
    assert response.status_code in {200, 400, 413}, response.text
    text = response.text
    assert "Unexpected error." not in text, text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    if category != "SSC":
        leaked = [value for value in SSC_ONLY_VALUES if value in text]
        assert not leaked, (leaked, text)


@FUZZ
@given(document=DOCUMENTS, category=CATEGORIES)
async def test_generated_documents_never_fail_the_server(isolated, caplog, document, category):
    caplog.clear()
    response = await isolated.client.post(
        "/graphql",
        json={"query": document},
        headers={"Authorization": f"Bearer {isolated.token(category)}"},
    )
    check_answer(response, category, caplog)


@FUZZ
@given(
    query=st.sampled_from(OPERATIONS_WITH_VARIABLES),
    variables=st.dictionaries(VARIABLE_NAMES, JSON, max_size=4),
    category=CATEGORIES,
)
async def test_arbitrary_variables_never_fail_the_server(
    isolated, caplog, query, variables, category
):
    caplog.clear()
    body = json.dumps({"query": query, "variables": variables}).encode()
    response = await isolated.client.post(
        "/graphql",
        content=body,
        headers={
            "Authorization": f"Bearer {isolated.token(category)}",
            "Content-Type": "application/json",
        },
    )
    check_answer(response, category, caplog)
