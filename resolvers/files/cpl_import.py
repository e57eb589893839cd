"""`cpl-pathways import`: a CPL or pathways file into the database, all or nothing.

Everything happens in one unit of work (`resolvers.writes.unit_of_work`, as every mutation does),
which first takes the writers' lock, so the file is checked against the data it will change.
It commits only when no row has a problem, something changes and this is not a dry run;
otherwise it rolls back, and with it the data revision, so importing the same file twice
leaves the second time no trace (caches stay warm, nobody is notified). Changes go through
the mutations' write functions and change builders: each change goes to the change log's
consumers, with the importer as actor. The caller hands those consumers in (the command line
wires the notification channels, as the server does for every mutation): this floor knows
the consumers only by their interface, `ChangeConsumer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from permissions.policy import Rule
from permissions.principal import PartyCategory, Principal
from permissions.row_scopes import rule_scope
from resolvers.files.cpl_files import Table, read_table
from resolvers.files.import_devices import plan_cpl
from resolvers.files.import_pathways import plan_pathways
from resolvers.files.import_prerequisites import apply_prerequisites, plan_prerequisites
from resolvers.files.import_problems import Problems
from resolvers.writes.change_log import ChangeConsumer
from resolvers.writes.unit_of_work import UnitOfWork, Work

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

    async def apply(self, work: Work) -> None: ...


@dataclass(frozen=True)
class ImportResult:
    kind: str
    rows: int
    problems: list[str]
    changes: list[str]
    counts: dict[str, int]
    written: bool
    event_ids: list[int]
    warnings: list[str] = field(default_factory=list)  # read but ignored: unknown columns


async def import_file(
    sessions: async_sessionmaker[AsyncSession],
    consumers: Sequence[ChangeConsumer],
    path: Path,
    principal: Principal,
    *,
    dry_run: bool = False,
) -> ImportResult:
    """Import `path`; raises `cpl_files.FileProblem` when the file as a whole is unreadable."""
    table = read_table(path)
    return await import_table(sessions, consumers, table, path.name, principal, dry_run=dry_run)


async def import_table(
    sessions: async_sessionmaker[AsyncSession],
    consumers: Sequence[ChangeConsumer],
    table: Table,
    source: str,
    principal: Principal,
    *,
    dry_run: bool = False,
) -> ImportResult:
    async def change(work: Work) -> tuple[Plan, Work]:
        planner = plan_cpl if table.kind == "cpl" else plan_pathways
        plan: Plan = await planner(work.session, table.rows, source)
        for number, problem in table.problems:  # rows the file's reader could not read
            plan.problems.add(number, problem)
        # A CPL file's prerequisites column (`resolvers.files.import_prerequisites`).
        declared = await plan_prerequisites(work.session, table.rows, plan)
        if plan.problems or not plan.changes or dry_run:
            work.discard()
        else:
            await plan.apply(work)
            await apply_prerequisites(work, declared)
        return plan, work

    # The importer writes what the device writers' mutations write, under their rule.
    scope = rule_scope(principal, Rule.DEVICE_WRITERS)
    plan, work = await UnitOfWork(sessions, consumers).run(principal, scope, change)
    write = not work.discarded
    event_ids = [recorded.id for recorded in work.log.recorded]
    return ImportResult(
        kind=table.kind,
        rows=len(table.rows),
        problems=plan.problems.lines(),
        changes=plan.changes,
        counts=plan.counts,
        written=bool(write),
        event_ids=event_ids,
        warnings=table.warnings,
    )
