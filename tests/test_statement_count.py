"""Pages read the snapshot of the data revision: the statement count of a page does not grow
with its size, and is nil once the revision's snapshot is loaded."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import event

from bench.generate import load_synthetic_cpl
from server.app import create_app, create_services
from tests.harness import asgi_client, fresh_database

QUERY = """query($first: Int!) { devices(first: $first) { nodes {
  manufacturer { name } firmware { upgradesTo { to { version } } } } } }"""


@pytest.fixture(scope="module")
async def counted(settings, tmp_path_factory):
    async with fresh_database(tmp_path_factory.mktemp("count")) as url:
        await load_synthetic_cpl(url, devices=200, firmware_per_device=3, pathways_per_device=2)
        # Count execution: no response cache, the revision read once (by the first query).
        big = replace(
            settings, database_url=url, response_cache_bytes=0, revision_max_age_seconds=3600
        )
        services = create_services(big)
        statements: list[str] = []
        event.listen(
            services.engine.sync_engine,
            "before_cursor_execute",
            lambda conn, cursor, sql, *args: statements.append(sql),
        )
        yield create_app(big, services), statements
        await services.engine.dispose()


async def run(app, token, first: int, statements: list[str]) -> int:
    statements.clear()
    async with asgi_client(app) as client:
        response = await client.post(
            "/graphql",
            json={"query": QUERY, "variables": {"first": first}},
            headers={"Authorization": f"Bearer {token('SMALL_SUPPLIER')}"},
        )
    body = response.json()
    assert "errors" not in body
    nodes = body["data"]["devices"]["nodes"]
    assert len(nodes) == first
    assert all(len(n["firmware"]) == 3 for n in nodes)
    assert all(n["firmware"][0]["upgradesTo"][0]["to"]["version"] for n in nodes)
    return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])


async def test_statements_do_not_grow_with_the_page(counted, token):
    app, statements = counted
    cold = await run(app, token, 20, statements)
    # The revision, then the snapshot: the revision again, five tables, announced withdrawals.
    assert cold <= 8
    small = await run(app, token, 20, statements)
    large = await run(app, token, 200, statements)
    assert small == large == 0  # pages of the same revision read from its snapshot
