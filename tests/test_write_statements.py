"""A write costs the statements it needs and no more: a correction takes the writers' lock,
reads the pathway once (with its device's manufacturer and both ends, for the row scope and the
history), compares and sets it in one statement, and records its change."""

from __future__ import annotations

import re

from sqlalchemy import event

from tests.conftest import BACKEND

PATHWAYS = """{ device(id: "device:5") { firmware { upgradesTo { id revision status
  to { version } } } } }"""
CORRECT = """mutation($input: CorrectUpgradePathwayInput!) {
  correctUpgradePathway(input: $input) { __typename
  ... on CorrectUpgradePathwaySuccess { pathway { revision notes to { version } } } } }"""


async def counted(isolated, query: str, variables: dict) -> tuple[dict, list[str]]:
    """The response, and the statements the request ran (their first words and table)."""
    statements: list[str] = []

    def note(_conn, _cursor, sql: str, *_args) -> None:
        words = re.sub(r"\s+", " ", sql).strip()
        statements.append(words)

    engine = isolated.services.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        body = await isolated.gql("SECAS", query, variables)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return body, statements


async def published_pathway(isolated, index: int) -> dict:
    """One of the demo device's published pathways, as a client reads it before correcting."""
    body = await isolated.gql("SECAS", PATHWAYS)
    pathways = [
        pathway
        for firmware in body["data"]["device"]["firmware"]
        for pathway in firmware["upgradesTo"]
        if pathway["status"] == "PUBLISHED"
    ]
    assert len(pathways) > index, body
    return pathways[index]


def kinds(statements: list[str]) -> list[str]:
    """`UPDATE data_revision`, `SELECT upgrade_pathway`, ...: each statement's verb and table."""
    found = []
    for sql in statements:
        verb = sql.split(" ", 1)[0].upper()
        table = re.search(r"(?:FROM|UPDATE|INTO) (\w+)", sql, re.IGNORECASE)
        found.append(f"{verb} {table.group(1) if table else ''}".strip())
    return found


async def test_a_notes_correction_takes_five_statements_and_a_notify_on_postgresql(isolated):
    pathway = await published_pathway(isolated, 0)
    variables = {
        "input": {
            "pathwayId": pathway["id"],
            "expectedRevision": pathway["revision"],
            "reason": "typo",
            "notes": "Corrected notes",
        }
    }
    body, statements = await counted(isolated, CORRECT, variables)
    result = body["data"]["correctUpgradePathway"]
    assert result == {
        "__typename": "CorrectUpgradePathwaySuccess",
        "pathway": {
            "revision": pathway["revision"] + 1,
            "notes": "Corrected notes",
            "to": pathway["to"],
        },
    }
    writes = [k for k in kinds(statements) if k.split(" ")[0] in {"UPDATE", "SELECT", "INSERT"}]
    expected = [
        "UPDATE data_revision",  # the writers' lock and the new data revision, once
        "SELECT upgrade_pathway",  # the pathway, its manufacturer and both ends, once
        "UPDATE upgrade_pathway",  # compare-and-set on the revision, RETURNING it
        "INSERT audit_event",  # its change
        "SELECT fleet_group",  # the fleets on its device, by the index (none: no more)
        "SELECT webhook",  # the outbox: which webhooks want it
    ]
    if BACKEND == "postgresql":
        expected.append("SELECT unnest")  # pg_notify, inside the transaction
    assert writes[: len(expected)] == expected, statements
    # What follows is the response's read of the new data revision: no more writing.
    assert not any(k.startswith(("UPDATE", "INSERT")) for k in writes[len(expected) :])


async def test_a_stale_correction_is_refused_and_changes_nothing(isolated):
    pathway = await published_pathway(isolated, 1)
    variables = {
        "input": {
            "pathwayId": pathway["id"],
            "expectedRevision": pathway["revision"] + 1,
            "reason": "stale",
            "notes": "never written",
        }
    }
    body, statements = await counted(isolated, CORRECT, variables)
    assert body["data"]["correctUpgradePathway"]["__typename"] == "ConflictError"
    assert not any(k.startswith(("INSERT", "UPDATE upgrade_pathway")) for k in kinds(statements))
    notes = await isolated.scalar(
        "SELECT notes FROM upgrade_pathway WHERE id = :id", id=int(pathway["id"].split(":")[1])
    )
    assert notes != "never written"
