"""CPL entries and MP231's submissions (issue 27): entry ids and facts, the three predecessor
statements, pathways made from a submission, the manufacturer's firmware contact, plans blocked
by a gap in the data, and the SSC's vulnerability search."""

from __future__ import annotations

import pytest

from tests.conftest import CATEGORIES

ERR = "... on MutationError { code message field }"
ENTRY = """id version cplEntryId gbcsVersion smetsChtsVersion predecessors imageHash
  cpaCertificate { reference expiresOn }"""
ADD_FIRMWARE = f"""mutation($input: AddFirmwareInput!) {{ addFirmware(input: $input) {{
  __typename ... on AddFirmwareSuccess {{ firmware {{ {ENTRY}
    upgradesFrom {{ status publishedBy from {{ version cplEntryId }} }} }} }} {ERR} }} }}"""
CONTACT = f"""mutation($input: SetFirmwareContactInput!) {{ setFirmwareContact(input: $input) {{
  __typename ... on SetFirmwareContactSuccess {{ manufacturer {{ manufacturerIdentifier
    firmwareContact }} }} {ERR} }} }}"""
PLAN = """query($d: ID!, $f: String!) { upgradePath(deviceId: $d, fromVersion: $f) {
  reachable reason contact target { version predecessors } } }"""
STACKS = """query($s: String!, $m: TextMatch) { firmwareByZigbeeStack(stackVersion: $s, match: $m) {
  id version zigbeeStackVersion device { id zigbeeStackVersion } } }"""
HASH = "ab" * 32
NON_SSC = [category for category in CATEGORIES if category != "SSC"]


def added(body: dict) -> dict:
    assert "errors" not in body, body
    return body["data"]["addFirmware"]


# --- an entry's facts, read by every Party ---------------------------------------------------


@pytest.mark.parametrize("category", CATEGORIES)
async def test_an_entry_and_its_facts_by_entry_id_in_any_case(gql, category):
    body = await gql(category, f'{{ cplEntry(id: "cpl-0001-04") {{ {ENTRY} device {{ id }} }} }}')
    assert "errors" not in body, body
    assert body["data"]["cplEntry"] == {
        "id": "firmware:4",
        "version": "64000300",
        "cplEntryId": "CPL-0001-04",
        "gbcsVersion": "4.1",
        "smetsChtsVersion": "SMETS2 v5.1",
        "predecessors": "LISTED",
        "imageHash": "64000300" * 8,
        "cpaCertificate": {"reference": "CPA-1000-4", "expiresOn": "2029-06-30"},
        "device": {"id": "device:1"},
    }


async def test_an_unknown_entry_is_not_found(gql):
    for wanted in ("CPL-9999-01", "N/A", "not an id!"):
        body = await gql("SMALL_SUPPLIER", f'{{ cplEntry(id: "{wanted}") {{ id }} }}')
        assert body["data"] == {"cplEntry": None}
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_the_statements_and_contacts_of_the_demo(gql):
    body = await gql(
        "NETWORK_PARTY",
        """{ manufacturers { manufacturerIdentifier firmwareContact }
        d4: device(id: "device:4") { firmware { version predecessors } }
        d12: device(id: "device:12") { firmware { version predecessors upgradesFrom { id } } } }""",
    )
    assert [m["firmwareContact"] for m in body["data"]["manufacturers"]] == [
        "firmware@northwind-metering.example",
        None,
        "Kestrel CPL desk, cpl@kestrel-grid.example, 0113 496 0000",
    ]
    # The dead end's second firmware said "N/A"; the last device's latest said nothing.
    statements = [f["predecessors"] for f in body["data"]["d4"]["firmware"]]
    assert statements == ["NONE_EARLIER", "NONE_EARLIER", "LISTED", "LISTED"]
    latest = body["data"]["d12"]["firmware"][-1]
    assert latest == {"version": "6D0B0202", "predecessors": "NOT_SUPPLIED", "upgradesFrom": []}


# --- MP231's submission through addFirmware --------------------------------------------------


async def test_upgradable_from_two_entries_makes_two_pathways_in_one_write(isolated):
    before = await isolated.scalar("SELECT revision FROM data_revision")
    entry = {
        "deviceId": "device:1",
        "version": "5a000400",
        "imageHash": HASH.upper(),
        "cplEntryId": "cpl-0001-05",
        "gbcsVersion": "4.2",
        "smetsChtsVersion": "SMETS2 v5.2",
        "cpaCertificate": {"reference": "CPA-1000-5", "expiresOn": "2030-06-30"},
        "upgradableFromEntries": ["CPL-0001-04", "cpl-0001-03"],
    }
    result = added(await isolated.gql("MANUFACTURER", ADD_FIRMWARE, {"input": entry},
                                      manufacturer_id="0A1B"))  # fmt: skip
    firmware = result["firmware"]
    assert result["__typename"] == "AddFirmwareSuccess"
    assert {k: v for k, v in firmware.items() if k not in ("id", "upgradesFrom")} == {
        "version": "5A000400",
        "cplEntryId": "CPL-0001-05",
        "gbcsVersion": "4.2",
        "smetsChtsVersion": "SMETS2 v5.2",
        "predecessors": "LISTED",
        "imageHash": HASH.upper(),
        "cpaCertificate": {"reference": "CPA-1000-5", "expiresOn": "2030-06-30"},
    }
    assert firmware["upgradesFrom"] == [
        {"status": "PUBLISHED", "publishedBy": "DEV-MANUFACTURER",
         "from": {"version": "64000300", "cplEntryId": "CPL-0001-04"}},
        {"status": "PUBLISHED", "publishedBy": "DEV-MANUFACTURER",
         "from": {"version": "6D000200", "cplEntryId": "CPL-0001-03"}},
    ]  # fmt: skip
    # One unit of work: one revision, the firmware's event and one per pathway.
    assert await isolated.scalar("SELECT revision FROM data_revision") == before + 1
    history = await isolated.gql(
        "SSC", '{ auditEvents(first: 3, deviceId: "device:1") { nodes { action changes { field '
        "after } } } }",
    )  # fmt: skip
    events = history["data"]["auditEvents"]["nodes"]
    assert [e["action"] for e in events] == ["PATHWAY_PUBLISHED"] * 2 + ["FIRMWARE_ADDED"]
    changes = {c["field"]: c["after"] for c in events[2]["changes"]}
    assert changes["cplEntryId"] == "CPL-0001-05" and changes["predecessors"] == "LISTED"
    assert changes["cpaCertificate"] == "CPA-1000-5, expires 2030-06-30"
    assert "zigbeeStackVersion" in changes  # SSC-only, recorded whether set or not
    # The new entry is the latest, reached by the listed pathways.
    plan = await isolated.gql("LARGE_SUPPLIER", PLAN, {"d": "device:1", "f": "7F000000"})
    assert plan["data"]["upgradePath"] == {
        "reachable": True,
        "reason": None,
        "contact": None,
        "target": {"version": "5A000400", "predecessors": "LISTED"},
    }


async def test_no_earlier_version_and_saying_nothing(isolated):
    for version, extra, statement in (
        ("5A000401", {"noEarlierVersion": True}, "NONE_EARLIER"),
        ("5A000402", {}, "NOT_SUPPLIED"),
        ("5A000403", {"noEarlierVersion": False, "upgradableFrom": ["7F000000"]}, "LISTED"),
    ):
        entry = {"deviceId": "device:1", "version": version, **extra}
        firmware = added(await isolated.gql("SECAS", ADD_FIRMWARE, {"input": entry}))["firmware"]
        assert firmware["predecessors"] == statement
        assert len(firmware["upgradesFrom"]) == (statement == "LISTED")
        assert firmware["cplEntryId"] is None  # optional


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [
        ({"imageHash": "ab"}, "VALIDATION", "imageHash"),
        ({"imageHash": "g" * 64}, "VALIDATION", "imageHash"),
        ({"imageHash": HASH + "a"}, "VALIDATION", "imageHash"),
        ({"cplEntryId": "CPL-0002-01"}, "CONFLICT", "cplEntryId"),
        ({"cplEntryId": "n/a"}, "VALIDATION", "cplEntryId"),
        ({"cplEntryId": "has space"}, "VALIDATION", "cplEntryId"),
        ({"noEarlierVersion": True, "upgradableFrom": ["7F000000"]}, "VALIDATION",
         "noEarlierVersion"),
        ({"upgradableFrom": []}, "VALIDATION", "upgradableFrom"),
        ({"upgradableFrom": ["0BADF00D"]}, "NOT_FOUND", "upgradableFrom"),
        ({"upgradableFrom": ["abcdef09"]}, "VALIDATION", "upgradableFrom"),
        ({"upgradableFrom": ["nothex"]}, "VALIDATION", "upgradableFrom"),
        ({"upgradableFromEntries": ["CPL-9999-01"]}, "NOT_FOUND", "upgradableFromEntries"),
        ({"upgradableFromEntries": ["CPL-0002-01"]}, "VALIDATION", "upgradableFromEntries"),
        ({"cpaCertificate": {"reference": " ", "expiresOn": "2030-01-01"}}, "VALIDATION",
         "cpaCertificate"),
        ({"gbcsVersion": "x" * 21}, "VALIDATION", "gbcsVersion"),
    ],
)  # fmt: skip
async def test_a_bad_submission_writes_nothing(isolated, extra, code, field):
    before = await isolated.scalar("SELECT revision FROM data_revision")
    entry = {"deviceId": "device:1", "version": "ABCDEF09", **extra}
    result = added(await isolated.gql("SECAS", ADD_FIRMWARE, {"input": entry}))
    assert (result["code"], result["field"]) == (code, field), result
    assert await isolated.scalar("SELECT revision FROM data_revision") == before
    assert await isolated.scalar("SELECT count(*) FROM firmware WHERE version = 'ABCDEF09'") == 0


# --- the firmware contact ------------------------------------------------------------------


async def test_the_contact_is_set_by_its_own_manufacturer_or_secas_only(isolated):
    own = await isolated.gql(
        "MANUFACTURER",
        CONTACT,
        {
            "input": {
                "manufacturerIdentifier": "0c2d",
                "firmwareContact": " cpl@brightwater.example ",
            }
        },
        manufacturer_id="0C2D",
    )
    assert own["data"]["setFirmwareContact"]["manufacturer"] == {
        "manufacturerIdentifier": "0C2D",
        "firmwareContact": "cpl@brightwater.example",
    }
    for category, claims in (("MANUFACTURER", {"manufacturer_id": "0A1B"}),
                             ("SMALL_SUPPLIER", {}), ("SSC", {})):  # fmt: skip
        refused = await isolated.gql(
            category,
            CONTACT,
            {"input": {"manufacturerIdentifier": "0C2D", "firmwareContact": "spoofed"}},
            **claims,
        )
        assert refused["data"]["setFirmwareContact"] is None
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    secas = await isolated.gql(
        "SECAS", CONTACT, {"input": {"manufacturerIdentifier": "0C2D", "firmwareContact": ""}}
    )
    assert secas["data"]["setFirmwareContact"]["manufacturer"]["firmwareContact"] is None
    assert await isolated.scalar(
        "SELECT count(*) FROM manufacturer WHERE firmware_contact = 'spoofed'"
    ) == 0  # fmt: skip
    unknown = await isolated.gql(
        "SECAS", CONTACT, {"input": {"manufacturerIdentifier": "FFFF", "firmwareContact": "x"}}
    )
    assert unknown["data"]["setFirmwareContact"]["code"] == "NOT_FOUND"


# --- plans: a gap in the data, with whom to ask -------------------------------------------------


async def test_a_plan_blocked_by_pathways_not_supplied_names_the_contact(gql):
    body = await gql("SMALL_SUPPLIER", PLAN, {"d": "device:12", "f": "7F0B0002"})
    assert body["data"]["upgradePath"] == {
        "reachable": False,
        "reason": "PATHWAYS_NOT_SUPPLIED",
        "contact": "Kestrel CPL desk, cpl@kestrel-grid.example, 0113 496 0000",
        "target": {"version": "6D0B0202", "predecessors": "NOT_SUPPLIED"},
    }
    # A dead end stays a dead end; a manufacturer without a contact gives none.
    dead_end = await gql("SMALL_SUPPLIER", PLAN, {"d": "device:4", "f": "7F030000"})
    assert dead_end["data"]["upgradePath"]["reason"] == "NO_PATHWAY"
    assert dead_end["data"]["upgradePath"]["contact"] == "firmware@northwind-metering.example"
    reachable = await gql("SMALL_SUPPLIER", PLAN, {"d": "device:12", "f": "6D0B0202"})
    assert reachable["data"]["upgradePath"]["contact"] is None  # not blocked: nobody to ask


async def test_the_fleet_plan_summarises_blocked_meters_by_reason(gql):
    query = """query($items: [FleetItemInput!]!) { fleetPlan(items: $items) {
      summary { meters blocked blockedByReason { reason meters } }
      entries { plan { reason contact } } } }"""
    items = [
        {"deviceId": "device:12", "firmwareVersion": "7F0B0002", "meterCount": 40},
        {"deviceId": "device:12", "firmwareVersion": "760B0102", "meterCount": 2},
        {"deviceId": "device:4", "firmwareVersion": "7F030000", "meterCount": 5},
        {"deviceId": "device:1", "firmwareVersion": "7F000000", "meterCount": 100},
        {"deviceId": "device:1", "firmwareVersion": "0BADF00D", "meterCount": 3},
    ]
    body = await gql("LARGE_SUPPLIER", query, {"items": items})
    fleet = body["data"]["fleetPlan"]
    assert fleet["summary"] == {
        "meters": 150,
        "blocked": 50,
        "blockedByReason": [
            {"reason": "NO_PATHWAY", "meters": 5},
            {"reason": "PATHWAYS_NOT_SUPPLIED", "meters": 42},
            {"reason": None, "meters": 3},
        ],
    }
    kestrel = "Kestrel CPL desk, cpl@kestrel-grid.example, 0113 496 0000"
    assert [e["plan"] for e in fleet["entries"]] == [
        {"reason": "PATHWAYS_NOT_SUPPLIED", "contact": kestrel},
        {"reason": "PATHWAYS_NOT_SUPPLIED", "contact": kestrel},
        {"reason": "NO_PATHWAY", "contact": "firmware@northwind-metering.example"},
        {"reason": None, "contact": None},
        None,
    ]


# --- the SSC's vulnerability search ---------------------------------------------------------


async def test_the_ssc_finds_firmware_by_stack_exact_or_by_prefix_in_any_case(isolated):
    async def found(stack: str, match: str | None) -> list[dict]:
        body = await isolated.gql("SSC", STACKS, {"s": stack, "m": match})
        assert "errors" not in body, body
        return body["data"]["firmwareByZigbeeStack"]

    unpatched = await found("zb-pro 2017 r22", None)  # EXACT_IGNORE_CASE by default
    every = await found("  zb-pro 2017", "PREFIX")
    assert await found("ZB-PRO 2017 r22 p1 and more", "PREFIX") == []
    patched = await found("ZB-PRO 2017 R22 P", "PREFIX")
    assert len(unpatched) == 12 and len(patched) == 4 and len(every) == 16
    assert {f["zigbeeStackVersion"] for f in unpatched} == {"ZB-PRO 2017 r22"}
    # The patched release runs its own stack; its device still says the old one.
    assert {f["zigbeeStackVersion"] for f in patched} == {"ZB-PRO 2017 r22 p1"}
    assert {f["device"]["zigbeeStackVersion"] for f in patched} == {"ZB-PRO 2017 r22"}
    assert [f["device"]["id"] for f in patched] == ["device:1", "device:4", "device:7", "device:10"]
    log = await isolated.gql("SSC", "{ sscAccessLog(first: 1) { nodes { fields deviceIds } } }")
    assert log["data"]["sscAccessLog"]["nodes"][0] == {
        "fields": [
            "Device.zigbeeStackVersion",
            "Firmware.zigbeeStackVersion",
            "Query.firmwareByZigbeeStack",
        ],
        "deviceIds": ["device:1", "device:4", "device:7", "device:10"],
    }


async def test_a_blank_stack_is_refused(gql):
    body = await gql("SSC", STACKS, {"s": "  ", "m": "PREFIX"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("category", NON_SSC)
async def test_the_stack_search_is_refused_for_every_other_category(gql, category):
    claims = {"manufacturer_id": "0A1B"} if category == "MANUFACTURER" else {}
    for match in ("PREFIX", None):
        body = await gql(category, STACKS, {"s": "ZB-PRO", "m": match}, **claims)
        assert body["data"] is None  # a non-null root field refused
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    firmware = await gql(
        category, '{ firmware(id: "firmware:4") { zigbeeStackVersion } }', **claims
    )
    assert firmware["data"] == {"firmware": {"zigbeeStackVersion": None}}
    assert firmware["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_firmware_without_its_own_stack_runs_its_devices(gql):
    body = await gql(
        "SSC", '{ device(id: "device:1") { zigbeeStackVersion firmware { zigbeeStackVersion } } }'
    )
    device = body["data"]["device"]
    assert [f["zigbeeStackVersion"] for f in device["firmware"]] == [
        *[device["zigbeeStackVersion"]] * 3,
        "ZB-PRO 2017 r22 p1",
    ]


# --- the device filter: SSC-only text, any case, whole or prefix -------------------------------


async def test_ssc_filters_match_in_any_case_and_by_prefix(gql):
    def query(filter_: str) -> str:
        return f"{{ devices(filter: {{{filter_}}}) {{ totalCount }} }}"

    async def total(filter_: str) -> int:
        body = await gql("SSC", query(filter_))
        assert "errors" not in body, body
        return body["data"]["devices"]["totalCount"]

    assert await total('zigbeeChipsetVendor: "Lumen Silicon"') == 4
    assert await total('zigbeeChipsetVendor: "lumen silicon"') == 4
    assert await total('zigbeeChipsetVendor: "lumen"') == 0
    assert await total('zigbeeChipsetVendor: "lumen", zigbeeMatch: PREFIX') == 4
    assert await total('zigbeeStackVersion: "zb-pro", zigbeeMatch: PREFIX') == 8
    assert await total("zigbeeMatch: PREFIX") == 12  # qualifies nothing: every device
    for category in NON_SSC:
        body = await gql(category, query("zigbeeMatch: EXACT_IGNORE_CASE"))
        assert body["data"] is None  # a non-null root field refused
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_fleet_file_summarises_blocked_meters_by_reason(client, token):
    fleet = (
        "meter,device_id,firmware_version,meter_count\n"
        "a,device:12,7F0B0002,40\n"
        "b,device:12,7F0B0002,40\n"  # the same item again: counted again
        "c,device:4,7F030000,5\n"
        "d,device:1,7F000000,100\n"
        "e,device:1,64000300,7\n"
        "f,device:1,0BADF00D,3\n"
        "g,device:1,7F000000,many\n"
    )
    headers = {"Authorization": f"Bearer {token('SMALL_SUPPLIER')}", "Content-Type": "text/csv"}
    summary = await client.post("/fleet-plan.csv?summary=true", content=fleet, headers=headers)
    assert summary.status_code == 200
    assert summary.text == (
        "outcome,reason,rows,meters\n"
        "up_to_date,,1,7\n"
        "upgradable,,1,100\n"
        "blocked,NO_PATHWAY,1,5\n"
        "blocked,PATHWAYS_NOT_SUPPLIED,2,80\n"
        "problem,,2,3\n"
    )
    rows = await client.post("/fleet-plan.csv", content=fleet, headers=headers)
    assert rows.text.splitlines()[1].endswith(",false,PATHWAYS_NOT_SUPPLIED,6D0B0202,,")


async def test_a_contact_retried_under_its_key_is_the_first_result(isolated):
    variables = {
        "input": {
            "manufacturerIdentifier": "0E3F",
            "firmwareContact": "cpl@kestrel-grid.example",
            "idempotencyKey": "contact-1",
        }
    }
    first = await isolated.gql("MANUFACTURER", CONTACT, variables, manufacturer_id="0E3F")
    revision = await isolated.scalar("SELECT revision FROM data_revision")
    again = await isolated.gql("MANUFACTURER", CONTACT, variables, manufacturer_id="0E3F")
    assert again == first and "errors" not in again
    assert await isolated.scalar("SELECT revision FROM data_revision") == revision
    other = await isolated.gql("MANUFACTURER", CONTACT, variables, manufacturer_id="0A1B")
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
