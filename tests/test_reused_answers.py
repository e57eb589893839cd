"""The answers of a view's rows, reused (`schema.completions`): a page asked again completes no
row afresh, yet answers exactly as before; a write starts from a new view; the SSC's access log
sees every reused read; denials never change a kept answer; the number kept is bounded. And the
selections compiled once for every request of a document (`schema.execution`): each request
still reads its own caller and its own variables."""

from __future__ import annotations

import gc
import json
import weakref

import pytest

import permissions.denials
import schema.completions
import schema.types
from permissions.policy import capability
from permissions.principal import PartyCategory
from schema.context import Context
from schema.execution import CompilingExecutor
from tests.harness import count_calls, noted_reads

TYPICAL = (
    "{ devices(first: 50) { nodes { id modelName zigbeeBand manufacturer { name } "
    "latestFirmware { version } firmware { version status upgradesTo { to { version } status } }"
    "%s } } }"
)
PUBLIC = TYPICAL % ""
WITH_SSC = TYPICAL % " zigbeeStackVersion zigbeeChipsetVendor"
ADD_FIRMWARE = """mutation($v: String!) { addFirmware(input: { deviceId: "device:3", version: $v })
  { __typename } }"""


@pytest.fixture
def uncached(services, monkeypatch):
    """The response cache off: every request executes."""
    monkeypatch.setattr(services.responses, "max_bytes", 0)


async def test_a_page_asked_again_completes_no_row_afresh(gql, uncached, monkeypatch):
    first = await gql("SMALL_SUPPLIER", PUBLIC)
    made = count_calls(monkeypatch, schema.types, "encode_id")
    again = await gql("SMALL_SUPPLIER", PUBLIC)
    assert again == first
    assert len(first["data"]["devices"]["nodes"]) > 5
    assert made[0] == 0, "a row's id was made again: its answer was not reused"
    # Another category with the same view reuses the same answers; the page is its own.
    await gql("LARGE_SUPPLIER", PUBLIC)
    assert made[0] == 0


async def test_a_write_is_answered_from_a_new_view(isolated, monkeypatch):
    monkeypatch.setattr(isolated.services.responses, "max_bytes", 0)
    before = await isolated.gql("SMALL_SUPPLIER", PUBLIC)
    await isolated.gql("MANUFACTURER", ADD_FIRMWARE, {"v": "0F0F0F0F"}, manufacturer_id="0A1B")
    after = await isolated.gql("SMALL_SUPPLIER", PUBLIC)
    versions = [
        [f["version"] for f in node["firmware"]] for node in after["data"]["devices"]["nodes"]
    ]
    assert any("0F0F0F0F" in listed for listed in versions), versions
    assert after != before


async def test_the_access_log_notes_every_reused_read(gql, uncached, monkeypatch):
    noted = noted_reads(monkeypatch)
    answers = [await gql("SSC", WITH_SSC) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert len(noted) == 3 and noted[0] == noted[1] == noted[2], noted
    fields, devices = noted[0]
    assert fields == ["Device.zigbeeChipsetVendor", "Device.zigbeeStackVersion"]
    assert len(devices) == len(answers[0]["data"]["devices"]["nodes"])


async def test_the_access_log_notes_reads_reused_inside_an_answer_made_afresh(
    gql, uncached, monkeypatch
):
    """A device's answer of a new shape made around firmware answers kept before: the reads
    of the firmware it reuses are noted for it, and again each time it is reused in turn."""
    firmware = "firmware { version zigbeeStackVersion }"
    kept_first = "{ devices(first: 50) { nodes { " + firmware + " } } }"
    around = "{ devices(first: 50) { nodes { id " + firmware + " } } }"
    noted = noted_reads(monkeypatch)
    answers = [await gql("SSC", kept_first), await gql("SSC", around), await gql("SSC", around)]
    assert len(noted) == 3 and noted[0] == noted[1] == noted[2], noted
    fields, devices = noted[0]
    assert fields == ["Firmware.zigbeeStackVersion"]
    nodes = answers[2]["data"]["devices"]["nodes"]
    assert len(devices) == sum(1 for node in nodes if node["firmware"]) > 5
    assert answers[1] == answers[2]


async def test_denials_leave_the_kept_answers_as_they_were(gql, uncached):
    """A Supplier asking for the SSC's fields gets nulls and one error a field, every time:
    placing the nulls copies what it changes, never the answer kept for the next request."""
    answers = [await gql("SMALL_SUPPLIER", WITH_SSC) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    codes = [error["extensions"]["code"] for error in answers[2]["errors"]]
    assert codes == ["FORBIDDEN", "FORBIDDEN"]
    nodes = answers[2]["data"]["devices"]["nodes"]
    assert all(node["zigbeeChipsetVendor"] is None for node in nodes)
    assert "Lumen" not in json.dumps(answers)


async def test_a_kept_answers_nulled_copy_is_made_once_and_bounded(gql, uncached, monkeypatch):
    """The nulls placed in a kept device's answer are kept with it for the decision, and a
    page of kept answers with its places: the same page asked again copies no device and walks
    none, answers as before, with its errors, made once for those places; a decision of
    another document gets its own copies and errors; the copies kept are bounded."""
    query = WITH_SSC.replace("zigbeeBand", "band: zigbeeBand")  # a document of this test's own
    first = await gql("SMALL_SUPPLIER", query)
    copied = count_calls(monkeypatch, permissions.denials, "_null_dict")
    walked = count_calls(monkeypatch, permissions.denials, "_list_stand_ins")
    errors = count_calls(monkeypatch, permissions.denials.DenialError, "__init__")
    again = await gql("SMALL_SUPPLIER", query)
    assert again == first and len(again["errors"]) == 2
    assert copied[0] == 2  # the answer's root and the connection, not one of its devices
    assert walked[0] == 0  # the page's places kept
    assert errors[0] == 0  # and the errors that name them
    nodes = len(first["data"]["devices"]["nodes"])
    other = await gql("SMALL_SUPPLIER", query.replace("band:", "zigbee:"))
    assert copied[0] == 2 + 2 + nodes
    assert walked[0] == 1
    assert errors[0] == 2
    assert [e["path"] for e in other["errors"]] == [e["path"] for e in first["errors"]]
    monkeypatch.setattr(permissions.denials, "MAX_NULLED", 3)
    bounded = await gql("SMALL_SUPPLIER", query.replace("band:", "kept:"))
    assert len(bounded["errors"]) == 2
    assert 0 < len(permissions.denials._nulled) <= 3


async def test_the_answers_kept_are_bounded(gql, uncached, services, monkeypatch):
    expected = await gql("SECAS", PUBLIC)
    view = (await services.snapshots.current()).view(capability(PartyCategory.SECAS))
    view.answers.clear()
    monkeypatch.setattr(schema.completions, "MAX_ANSWERS", 7)
    for _ in range(2):
        assert await gql("SECAS", PUBLIC) == expected
        assert 0 < len(view.answers) <= 7


async def test_a_selection_is_compiled_once_for_every_request_of_its_document(
    gql, uncached, monkeypatch
):
    await gql("SMALL_SUPPLIER", PUBLIC)
    compiled = count_calls(monkeypatch, CompilingExecutor, "compile")
    for category in ("LARGE_SUPPLIER", "SSC", "SMALL_SUPPLIER"):
        assert (await gql(category, PUBLIC))["data"]["devices"]["nodes"]
    assert compiled[0] == 0


async def test_each_request_reads_its_own_caller_through_a_shared_selection(gql, uncached):
    document = "{ viewer { partyId partyCategory } }"
    for party, category in (("ONE", "SMALL_SUPPLIER"), ("TWO", "SECAS"), ("ONE", "SSC")):
        viewer = (await gql(category, document, party_id=party))["data"]["viewer"]
        assert viewer == {"partyId": party, "partyCategory": category}


async def test_conditional_selections_follow_each_requests_variables(gql, uncached):
    document = (
        "query($f: Boolean!) { devices(first: 2) { nodes { id firmware @include(if: $f) "
        "{ version } } } }"
    )
    answers = [await gql("SMALL_SUPPLIER", document, {"f": f}) for f in (True, False, True)]
    shown = [["firmware" in node for node in a["data"]["devices"]["nodes"]] for a in answers]
    assert shown == [[True, True], [False, False], [True, True]]
    assert answers[0] == answers[2]


async def test_a_policys_copy_of_a_document_is_compiled_apart_from_it(gql, uncached):
    """The document pass's copy for a Supplier shares the operation's nodes with the SSC's
    document and differs in the fragment alone: each is answered by its own compilation."""
    document = (
        "{ devices(first: 50) { nodes { id ...z } } } fragment z on Device { zigbeeChipsetVendor }"
    )
    supplier, ssc, again = [await gql(c, document) for c in ("SMALL_SUPPLIER", "SSC", "SECAS")]
    for denied in (supplier, again):
        assert [e["extensions"]["code"] for e in denied["errors"]] == ["FORBIDDEN"]
        assert {n["zigbeeChipsetVendor"] for n in denied["data"]["devices"]["nodes"]} == {None}
    assert "errors" not in ssc and "_denied" not in json.dumps(ssc)
    assert any(node["zigbeeChipsetVendor"] for node in ssc["data"]["devices"]["nodes"])


async def test_a_kept_selection_keeps_nothing_of_the_request_that_compiled_it(
    isolated, monkeypatch
):
    """A selection compiled once for later requests holds no context (principal, headers,
    variables) of the request that compiled it, nor the view of an old revision."""
    isolated.services.responses.max_bytes = 0
    contexts: list[weakref.ref] = []
    made = Context.__post_init__

    def watched(self: Context) -> None:
        contexts.append(weakref.ref(self))
        made(self)

    monkeypatch.setattr(Context, "__post_init__", watched)
    document = "query($n: Int) { devices(first: $n) { nodes { id manufacturer { name } } } }"
    assert "errors" not in await isolated.gql("SSC", document, {"n": 3})
    held = await isolated.services.snapshots.current()
    view, revision = weakref.ref(held), held.revision
    del held
    assert contexts, "no request context was made"
    await isolated.gql("MANUFACTURER", ADD_FIRMWARE, {"v": "0E0E0E0E"}, manufacturer_id="0A1B")
    assert "errors" not in await isolated.gql("SMALL_SUPPLIER", "{ viewer { partyId } }")
    assert (await isolated.services.snapshots.current()).revision > revision
    gc.collect()
    assert all(ref() is None for ref in contexts), "a request's context outlived it"
    assert view() is None, "an old revision's view outlived it"
