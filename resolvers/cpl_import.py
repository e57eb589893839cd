"""`cpl-pathways import`: a CPL or pathways file into the database, all or nothing.

Everything happens in one transaction that first takes the writers' lock (`begin_write`, as
every mutation does), so the file is checked against the data it will change. It commits only
when no row has a problem, something changes and this is not a dry run; otherwise it rolls
back, and with it the data revision, so importing the same file twice leaves the second time
no trace (caches stay warm, nobody is notified). Changes go through the mutations' write
functions: each has its audit event, webhook deliveries and notification, with the importer
as actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifications.bus import ChangeBus
from permissions.principal import PartyCategory, Principal
from resolvers import mutations as writes
from resolvers.cpl_files import Table, read_table
from resolvers.import_devices import plan_cpl
from resolvers.import_pathways import plan_pathways
from resolvers.import_problems import Problems

IMPORTER_SUB = "cpl-pathways-import"


def importer(path: Path, party_id: str | None = None) -> Principal:
    """SECAS, the CPL's administrator, with a party id naming the import unless one is given."""
    return Principal(
        sub=IMPORTER_SUB,
        party_id=party_id or f"import:{path.name}",
        party_category=PartyCategory.SECAS,
    )


class Plan(Protocol):
    problems: Problems
    changes: list[str]
    counts: dict[str, int]

    async def apply(self, session: AsyncSession, principal: Principal) -> None: ...


@dataclass(frozen=True)
class ImportResult:
    kind: str
    rows: int
    problems: list[str]
    changes: list[str]
    counts: dict[str, int]
    written: bool
    event_ids: list[int]


async def import_file(
    sessions: async_sessionmaker[AsyncSession],
    bus: ChangeBus,
    path: Path,
    principal: Principal,
    *,
    dry_run: bool = False,
) -> ImportResult:
    """Import `path`; raises `cpl_files.FileProblem` when the file as a whole is unreadable."""
    table = read_table(path)
    return await import_table(sessions, bus, table, path.name, principal, dry_run=dry_run)


async def import_table(
    sessions: async_sessionmaker[AsyncSession],
    bus: ChangeBus,
    table: Table,
    source: str,
    principal: Principal,
    *,
    dry_run: bool = False,
) -> ImportResult:
    async with sessions() as session:
        session.info["cpl.bus"] = bus
        await session.begin()
        try:
            await writes.begin_write(session)
            planner = plan_cpl if table.kind == "cpl" else plan_pathways
            plan: Plan = await planner(session, table.rows, source)
            write = not plan.problems and plan.changes and not dry_run
            if write:
                await plan.apply(session, principal)
                await session.commit()
            else:
                await session.rollback()
        except BaseException:
            await session.rollback()
            raise
        event_ids = session.info.pop(writes.EVENTS, []) if write else []
    bus.after_commit(event_ids)  # as a mutation's commit does: this process's subscribers
    return ImportResult(
        kind=table.kind,
        rows=len(table.rows),
        problems=plan.problems.lines(),
        changes=plan.changes,
        counts=plan.counts,
        written=bool(write),
        event_ids=event_ids,
    )
