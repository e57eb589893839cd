"""The field policy as a caller sees it: every Party category against every Device field, and
no road around the SSC-only rule (aliases, fragments, nesting, filters, history)."""

from __future__ import annotations

import pytest

from models.demo import STACKS, VENDORS
from tests.conftest import CATEGORIES

PUBLIC_DEVICE_FIELDS = [
    "id",
    "deviceType",
    "modelIdentifier",
    "modelName",
    "hardwareVersion",
    "zigbeeBand",
    "manufacturer { name }",
    "firmware { version }",
    "latestFirmware { version }",
    "history { action }",
]
SSC_FIELDS = ["zigbeeStackVersion", "zigbeeChipsetVendor"]
SECRETS = [*VENDORS, *STACKS]
NON_SSC = [c for c in CATEGORIES if c != "SSC"]


def forbidden_errors(body: dict) -> list[dict]:
    return [e for e in body.get("errors", []) if e["extensions"]["code"] == "FORBIDDEN"]


def assert_no_secret(body: dict) -> None:
    text = str(body)
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("field", PUBLIC_DEVICE_FIELDS)
async def test_public_device_fields_for_every_category(gql, category, field):
    body = await gql(category, f"{{ devices(first: 50) {{ nodes {{ {field} }} }} }}")
    assert "errors" not in body
    nodes = body["data"]["devices"]["nodes"]
    assert len(nodes) == 12
    name = field.split()[0]
    assert all(node[name] not in (None, []) for node in nodes)


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("field", SSC_FIELDS)
async def test_ssc_only_fields(gql, category, field):
    body = await gql(category, f"{{ devices(first: 50) {{ nodes {{ modelName {field} }} }} }}")
    nodes = body["data"]["devices"]["nodes"]
    assert len(nodes) == 12 and all(node["modelName"] for node in nodes)
    if category == "SSC":
        assert "errors" not in body
        assert all(node[field] for node in nodes)
    else:
        assert all(node[field] is None for node in nodes)
        errors = forbidden_errors(body)
        assert len(errors) == 1 == len(body["errors"])
        assert errors[0]["path"][-1] == field
        assert_no_secret(body)


async def test_one_error_per_denied_selection_not_per_row(gql):
    body = await gql(
        "LARGE_SUPPLIER",
        """{ devices(first: 500) { nodes { zigbeeChipsetVendor zigbeeStackVersion
             again: zigbeeChipsetVendor } } }""",
    )
    assert len(body["data"]["devices"]["nodes"]) == 12
    errors = forbidden_errors(body)
    assert len(errors) == 3 == len(body["errors"])
    assert {e["path"][-1] for e in errors} == {"zigbeeChipsetVendor", "zigbeeStackVersion", "again"}


async def test_a_denied_selection_s_error_says_where_it_stands_in_the_document(gql):
    """Its line and column, as any GraphQL error's, in every answer that denies it (they are
    found once per document, not per answer)."""
    query = "{ devices(first: 2) { nodes {\n  id\n    zigbeeStackVersion } } }"
    for _ in range(2):
        (error,) = forbidden_errors(await gql("SMALL_SUPPLIER", query))
        assert error["locations"] == [{"line": 3, "column": 5}]
        assert error["path"] == ["devices", "nodes", 0, "zigbeeStackVersion"]


ROADS = {
    "alias": "{ devices { nodes { vendor: zigbeeChipsetVendor } } }",
    "fragment": """{ devices { nodes { ...Secret } } }
        fragment Secret on Device { zigbeeChipsetVendor zigbeeStackVersion }""",
    "inline fragment": "{ devices { nodes { ... on Device { zigbeeChipsetVendor } } } }",
    "manufacturers": "{ manufacturers { devices { zigbeeChipsetVendor zigbeeStackVersion } } }",
    "device by id": '{ device(id: "device:1") { zigbeeChipsetVendor zigbeeStackVersion } }',
    "firmware device": '{ firmware(id: "firmware:1") { device { zigbeeChipsetVendor } } }',
    "pathway device": """{ devices { nodes { firmware { upgradesTo { device {
        zigbeeStackVersion } to { device { zigbeeChipsetVendor } } } } } } }""",
    "latest firmware device": """{ devices { nodes { latestFirmware { device {
        zigbeeStackVersion } } } } }""",
    "edges": "{ devices { edges { node { zigbeeChipsetVendor } } } }",
}


@pytest.mark.parametrize("road", ROADS)
async def test_no_road_around_the_rule(gql, road):
    supplier = await gql("SMALL_SUPPLIER", ROADS[road])
    assert supplier["data"] is not None
    assert forbidden_errors(supplier) and len(supplier["errors"]) == len(forbidden_errors(supplier))
    assert len(supplier["errors"]) <= 2
    assert_no_secret(supplier)
    ssc = await gql("SSC", ROADS[road])
    assert "errors" not in ssc
    assert any(secret in str(ssc) for secret in SECRETS)


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("field", SSC_FIELDS)
async def test_restricted_filters(gql, category, field):
    value = VENDORS[0] if field == "zigbeeChipsetVendor" else STACKS[0]
    query = f'{{ devices(filter: {{ {field}: "{value}" }}) {{ totalCount nodes {{ id }} }} }}'
    body = await gql(category, query)
    if category == "SSC":
        assert "errors" not in body
        assert 0 < body["data"]["devices"]["totalCount"] < 12
        assert len(body["data"]["devices"]["nodes"]) == body["data"]["devices"]["totalCount"]
    else:
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        assert_no_secret(body)


DEFAULT_ROADS = {
    "object default": 'query($f: DeviceFilter = {{{field}: "{value}"}}) {{ devices(filter: $f) '
    "{{ totalCount nodes {{ id }} }} }}",
    "scalar default": 'query($v: String = "{value}") {{ devices(filter: {{{field}: $v}}) '
    "{{ totalCount nodes {{ id }} }} }}",
    "default under a public field": "query($f: DeviceFilter = "
    '{{deviceType: ESME, {field}: "{value}"}}) {{ devices(filter: $f) {{ totalCount }} }}',
}


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("field", SSC_FIELDS)
@pytest.mark.parametrize("road", DEFAULT_ROADS)
async def test_restricted_filter_through_a_variable_default(gql, category, field, road):
    # A default is applied after the request's variables: sent with none, it is still a
    # restricted filter, refused (or, for the SSC, answered) as the inline one is.
    value = VENDORS[0] if field == "zigbeeChipsetVendor" else STACKS[0]
    inline = await gql(
        category, f'{{ devices(filter: {{ {field}: "{value}" }}) {{ totalCount nodes {{ id }} }} }}'
    )
    body = await gql(category, DEFAULT_ROADS[road].format(field=field, value=value))
    if category == "SSC":
        assert "errors" not in body
        assert 0 < body["data"]["devices"]["totalCount"] < 12
        if road != "default under a public field":
            assert body["data"] == inline["data"]
    else:
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        assert body["errors"][0]["message"] == inline["errors"][0]["message"]
        assert_no_secret(body)


async def test_restricted_filter_refused_where_the_search_runs(gql, monkeypatch):
    # With the document pass's argument check switched off, the search still refuses: the
    # refusal is read from the typed, coerced argument where the search runs.
    import permissions.strawberry_adapter as adapter

    monkeypatch.setattr(adapter, "refuse_restricted_arguments", lambda *_: None)
    for query in (
        f'{{ devices(filter: {{ zigbeeChipsetVendor: "{VENDORS[0]}" }}) {{ totalCount }} }}',
        f'query($v: String = "{STACKS[0]}") {{ devices(filter: {{zigbeeStackVersion: $v}}) '
        "{ totalCount } }",
    ):
        body = await gql("LARGE_SUPPLIER", query)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        assert body["errors"][0]["path"] == ["devices"]
        ssc = await gql("SSC", query)
        assert ssc["data"]["devices"]["totalCount"] > 0


@pytest.mark.parametrize("category", CATEGORIES)
async def test_a_skipped_restricted_field_is_skipped_for_everyone(gql, category):
    query = """query($on: Boolean = false) { device(id: "device:1") {
      modelName zigbeeChipsetVendor @include(if: $on) zigbeeStackVersion @skip(if: true) } }"""
    body = await gql(category, query)
    assert body == {"data": {"device": {"modelName": body["data"]["device"]["modelName"]}}}
    included = await gql(category, query, {"on": True})
    assert set(included["data"]["device"]) == {"modelName", "zigbeeChipsetVendor"}
    assert ("errors" in included) == (category != "SSC")


async def test_restricted_filter_refused_even_when_nothing_matches(gql):
    # Otherwise an empty versus a non-empty answer would reveal the value.
    body = await gql(
        "SECAS", '{ devices(filter: { zigbeeChipsetVendor: "nobody" }) { totalCount } }'
    )
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_public_filters(gql):
    body = await gql(
        "NETWORK_PARTY",
        """{ devices(filter: { manufacturerIdentifier: "0a1b", zigbeeBand: BAND_2_4_GHZ }) {
             totalCount nodes { zigbeeBand manufacturer { manufacturerIdentifier } } } }""",
    )
    nodes = body["data"]["devices"]["nodes"]
    assert body["data"]["devices"]["totalCount"] == len(nodes) == 2
    assert all(n["zigbeeBand"] == "BAND_2_4_GHZ" for n in nodes)
    assert all(n["manufacturer"]["manufacturerIdentifier"] == "0A1B" for n in nodes)


HISTORY = (
    '{ device(id: "device:1") { history { action changes { field before after redacted } } } }'
)


@pytest.mark.parametrize("category", CATEGORIES)
async def test_history_is_redacted_for_everyone_but_ssc(gql, category):
    body = await gql(category, HISTORY)
    assert "errors" not in body
    changes = {c["field"]: c for c in body["data"]["device"]["history"][0]["changes"]}
    assert changes["modelName"] == {
        "field": "modelName",
        "before": None,
        "after": "Aurora ESME Mk1",
        "redacted": False,
    }
    for field in SSC_FIELDS:
        if category == "SSC":
            assert changes[field]["redacted"] is False and changes[field]["after"]
        else:
            assert changes[field] == {
                "field": field,
                "before": None,
                "after": None,
                "redacted": True,
            }
    if category != "SSC":
        assert_no_secret(body)


@pytest.mark.parametrize("category", CATEGORIES)
async def test_audit_events_for_secas_and_ssc_only(gql, category):
    body = await gql(category, "{ auditEvents(first: 5) { totalCount nodes { action } } }")
    if category in ("SECAS", "SSC"):
        assert body["data"]["auditEvents"]["totalCount"] >= 12
        assert len(body["data"]["auditEvents"]["nodes"]) == 5
    else:
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_audit_events_redact_for_secas(gql):
    body = await gql(
        "SECAS", "{ auditEvents(first: 50) { nodes { changes { field after redacted } } } }"
    )
    assert "errors" not in body
    assert_no_secret(body)


@pytest.mark.parametrize("category", CATEGORIES)
async def test_viewer(gql, category):
    body = await gql(category, "{ viewer { partyId partyCategory manufacturerIdentifier } }")
    viewer = body["data"]["viewer"]
    assert viewer["partyCategory"] == category
    assert viewer["manufacturerIdentifier"] == ("0A1B" if category == "MANUFACTURER" else None)


async def test_audit_events_page_newest_first_and_filter(gql):
    query = """query($after: String, $device: ID, $action: ChangeKind) {
      auditEvents(first: 5, after: $after, deviceId: $device, action: $action) {
        totalCount nodes { id action } pageInfo { hasNextPage endCursor } } }"""
    seen, after = [], None
    while True:
        page = (await gql("SSC", query, {"after": after}))["data"]["auditEvents"]
        seen += [int(n["id"].split(":")[1]) for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(seen, reverse=True) and len(seen) == page["totalCount"]
    one = (await gql("SECAS", query, {"device": "device:3", "action": "DEVICE_ADDED"}))["data"]
    assert one["auditEvents"]["totalCount"] == 1
    assert one["auditEvents"]["nodes"][0]["action"] == "DEVICE_ADDED"
