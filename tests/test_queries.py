"""The read queries of the contract: pagination, lookups by id, latest firmware."""

from __future__ import annotations

import pytest

PAGE = """query($first: Int!, $after: String) {
  devices(first: $first, after: $after) {
    totalCount nodes { id } edges { cursor node { id } } pageInfo { hasNextPage endCursor }
  }
}"""


@pytest.mark.parametrize("size", [1, 5, 7, 12, 50])
async def test_pagination_walks_every_page_once(gql, size):
    seen, after, pages = [], None, 0
    while True:
        body = await gql("SMALL_SUPPLIER", PAGE, {"first": size, "after": after})
        connection = body["data"]["devices"]
        assert connection["totalCount"] == 12
        assert [e["node"]["id"] for e in connection["edges"]] == [
            n["id"] for n in connection["nodes"]
        ]
        seen += [n["id"] for n in connection["nodes"]]
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
        after = connection["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 12
    assert pages == -(-12 // size)


async def test_page_size_is_capped_at_500(gql):
    body = await gql("SMALL_SUPPLIER", PAGE, {"first": 100000})
    assert "errors" not in body and len(body["data"]["devices"]["nodes"]) == 12


async def test_cursor_is_opaque_and_validated(gql):
    body = await gql("SMALL_SUPPLIER", PAGE, {"first": 2, "after": "device:3"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["message"] == "Invalid cursor."


async def test_empty_page(gql):
    """Rows follow an empty first page, and its `endCursor` says where it stood (the start):
    not null, so that `after: endCursor` goes on from there (tests/test_relay_paging.py)."""
    body = await gql("SMALL_SUPPLIER", PAGE, {"first": 0})
    connection = body["data"]["devices"]
    assert connection["pageInfo"].pop("endCursor") is not None
    assert connection == {
        "totalCount": 12,
        "nodes": [],
        "edges": [],
        "pageInfo": {"hasNextPage": True},
    }


async def test_device_and_firmware_by_id(gql):
    body = await gql(
        "OTHER_SEC_PARTY",
        """{ device(id: "device:1") { id modelIdentifier manufacturer { manufacturerIdentifier }
               firmware { id version status } }
             firmware(id: "firmware:2") { version device { id }
               upgradesFrom { from { version } } } }""",
    )
    device = body["data"]["device"]
    assert device["id"] == "device:1" and device["modelIdentifier"] == "1000"
    assert device["manufacturer"]["manufacturerIdentifier"] == "0A1B"
    assert [f["version"] for f in device["firmware"]] == [
        "7F000000",
        "76000100",
        "6D000200",
        "64000300",
    ]
    assert body["data"]["firmware"]["device"]["id"] == "device:1"
    assert body["data"]["firmware"]["upgradesFrom"] == [{"from": {"version": "7F000000"}}]


@pytest.mark.parametrize(
    "query",
    [
        '{ device(id: "device:9999") { id } }',
        '{ device(id: "firmware:1") { id } }',
        '{ device(id: "nonsense") { id } }',
        '{ firmware(id: "firmware:9999") { id } }',
    ],
)
async def test_unknown_id_is_null_with_not_found(gql, query):
    body = await gql("SSC", query)
    assert list(body["data"].values()) == [None]
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_latest_firmware_is_most_recently_added_active_not_highest_hex(gql):
    body = await gql(
        "SMALL_SUPPLIER",
        """{ devices { nodes { modelIdentifier latestFirmware { version status addedToCplOn }
               firmware { version status addedToCplOn } } } }""",
    )
    devices = body["data"]["devices"]["nodes"]
    assert len(devices) == 12
    for device in devices:
        active = [f for f in device["firmware"] if f["status"] == "ACTIVE"]
        expected = max(active, key=lambda f: f["addedToCplOn"])
        assert device["latestFirmware"] == expected
        assert device["latestFirmware"]["version"] != max(f["version"] for f in active)


async def test_manufacturers(gql):
    body = await gql(
        "NETWORK_PARTY", "{ manufacturers { id name manufacturerIdentifier devices { id } } }"
    )
    manufacturers = body["data"]["manufacturers"]
    assert [m["manufacturerIdentifier"] for m in manufacturers] == ["0A1B", "0C2D", "0E3F"]
    assert sum(len(m["devices"]) for m in manufacturers) == 12


@pytest.mark.parametrize("device_id", ["device:²", "device:99999999999", "device:-1", "device:"])
async def test_odd_ids_are_not_found_not_errors(gql, device_id):
    body = await gql("SSC", "query($id: ID!) { device(id: $id) { id } }", {"id": device_id})
    assert body["data"] == {"device": None}
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_odd_cursor_is_bad_user_input(gql):
    import base64

    cursor = base64.urlsafe_b64encode("after:²".encode()).decode()
    body = await gql("SSC", PAGE, {"first": 2, "after": cursor})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_first_may_be_null_for_the_default_page(gql):
    body = await gql("SSC", "{ devices(first: null) { totalCount nodes { id } } }")
    assert len(body["data"]["devices"]["nodes"]) == 12


async def test_control_characters_in_a_filter_are_bad_user_input(gql):
    body = await gql(
        "SSC", "query($m: String) { devices(filter: { modelIdentifier: $m }) { totalCount } }",
        {"m": "10\u000000"},
    )  # fmt: skip
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
