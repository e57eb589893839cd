"""The pathway graph's rules as plain functions: the cycle a refused pathway names does not
depend on the order its device's pathways were read in."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from models.tables import FirmwareStatus
from resolvers.writes import validation as v
from resolvers.writes.write_rules import pathway_ends


@dataclass(frozen=True)
class Fw:
    id: int
    version: str
    status: FirmwareStatus = FirmwareStatus.ACTIVE


FIRMWARE = {f.version: f for f in (Fw(i, f"{i:08X}") for i in range(1, 6))}
# 1 → 2 and 1 → 3, and both lead on to 4: two cycles of the same length close with 4 → 1.
PUBLISHED = [(10, 1, 3), (11, 1, 2), (12, 3, 4), (13, 2, 4), (14, 4, 5)]


def refusal(published: list[tuple[int | None, int, int]]) -> str:
    with pytest.raises(v.MutationFailure) as refused:
        pathway_ends(FIRMWARE, published, "00000004", "00000001")
    assert refused.value.code == "CONFLICT"
    return refused.value.message


def test_the_cycle_named_is_the_same_in_every_row_order():
    messages = {refusal(list(order)) for order in itertools.permutations(PUBLISHED)}
    assert messages == {
        "This pathway would close a cycle: 00000001 → 00000002 → 00000004 → 00000001."
    }


def test_a_pathway_that_closes_no_cycle_gets_its_ends():
    start, end = pathway_ends(FIRMWARE, PUBLISHED, "00000002", "00000003")
    assert (start.id, end.id) == (2, 3)
