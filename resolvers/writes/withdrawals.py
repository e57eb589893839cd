"""Withdrawals announced before they take effect, and applied once when their day comes.

`withdrawFirmware` and `withdrawUpgradePathway` take `effectiveOn` (a UTC date; today when
absent). A later day schedules the withdrawal: a `ScheduledWithdrawal` row and a
`*_WITHDRAWAL_SCHEDULED` change, announced at once (with each owner's fleet impact, worked out
as if it had taken effect); the firmware or pathway stays usable until then. At 00:00 UTC that
day any process may apply it (`apply_due`): each due row is claimed inside a unit of work by one
conditional UPDATE (`... WHERE applied_at IS NULL RETURNING`), a row-level claim that works
through a transaction pooler, so two processes never both apply it; the one that claims it
records the usual `FIRMWARE_WITHDRAWN` or `PATHWAY_WITHDRAWN` change as its scheduler's.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.notice import ScheduledWithdrawal
from models.tables import (
    ChangeKind,
    Firmware,
    FirmwareStatus,
    PathwayStatus,
    UpgradePathway,
)
from permissions.principal import PartyCategory, Principal
from permissions.row_scopes import Scope
from resolvers.writes import validation as v
from resolvers.writes.change_log import Change, FieldChange
from resolvers.writes.unit_of_work import UnitOfWork, Work

logger = logging.getLogger("cpl_pathways.withdrawals")
FIELD = "withdrawalScheduledOn"  # the history's name for the announced day


class PastDate(ValueError):
    """`effectiveOn` before today (UTC): refused as BAD_USER_INPUT, nothing written."""


def _pending(firmware_id: int | None, pathway_id: int | None) -> Any:
    return select(ScheduledWithdrawal).where(
        col(ScheduledWithdrawal.applied_at).is_(None),
        col(ScheduledWithdrawal.firmware_id) == firmware_id
        if firmware_id is not None
        else col(ScheduledWithdrawal.pathway_id) == pathway_id,
    )


async def schedule(
    work: Work,
    *,
    device_id: int,
    reason: str,
    effective_on: date | None,
    firmware_id: int | None = None,
    pathway_id: int | None = None,
) -> bool:
    """Schedule the withdrawal if `effective_on` is a later day and return True; False when it
    is to take effect now (today, or not given). `PastDate` for a day gone; a CONFLICT when one
    is already scheduled (withdrawing it now, with no `effectiveOn`, is always allowed)."""
    today = work.now.date()
    if effective_on is None or effective_on == today:
        return False
    if effective_on < today:
        raise PastDate(f"effectiveOn {effective_on.isoformat()} is before today ({today} UTC).")
    field = "firmwareId" if firmware_id is not None else "pathwayId"
    earlier = (await work.session.exec(_pending(firmware_id, pathway_id))).first()
    if earlier is not None:
        raise v.conflict(
            field, f"Its withdrawal is already scheduled for {earlier.effective_on.isoformat()}."
        )
    principal = work.principal
    work.session.add(
        ScheduledWithdrawal(
            device_id=device_id,
            firmware_id=firmware_id,
            pathway_id=pathway_id,
            effective_on=effective_on,
            reason=reason,
            actor_sub=principal.sub,
            actor_party_id=principal.party_id,
            actor_party_category=principal.party_category.value,
            actor_manufacturer_id=principal.manufacturer_id,
        )
    )
    kind = (
        ChangeKind.FIRMWARE_WITHDRAWAL_SCHEDULED
        if firmware_id is not None
        else ChangeKind.PATHWAY_WITHDRAWAL_SCHEDULED
    )
    changed = (FieldChange(FIELD, None, effective_on.isoformat()),)
    work.log.append(
        Change(kind, device_id, changed, reason, firmware_id=firmware_id, pathway_id=pathway_id)
    )
    await work.session.flush()
    return True


async def settle(
    work: Work, *, firmware_id: int | None = None, pathway_id: int | None = None
) -> None:
    """A withdrawal made now ends any scheduled for the same firmware or pathway."""
    await work.session.exec(
        update(ScheduledWithdrawal)
        .where(
            col(ScheduledWithdrawal.applied_at).is_(None),
            col(ScheduledWithdrawal.firmware_id) == firmware_id
            if firmware_id is not None
            else col(ScheduledWithdrawal.pathway_id) == pathway_id,
        )
        .values(applied_at=work.now)
    )


def _actor(row: ScheduledWithdrawal) -> Principal:
    return Principal(
        row.actor_sub,
        row.actor_party_id,
        PartyCategory(row.actor_party_category),
        row.actor_manufacturer_id,
    )


async def _apply(work: Work, row: ScheduledWithdrawal) -> bool:
    """Claim `row` (one conditional UPDATE) and apply it; False when another process has."""
    claimed = (
        await work.session.exec(
            update(ScheduledWithdrawal)
            .where(
                col(ScheduledWithdrawal.id) == row.id,
                col(ScheduledWithdrawal.applied_at).is_(None),
            )
            .values(applied_at=work.now)
            .returning(col(ScheduledWithdrawal.id))
        )
    ).first()
    if claimed is None:
        work.discard()
        return False
    session = work.session
    if row.firmware_id is not None:
        firmware = await session.get(Firmware, row.firmware_id)
        if firmware is not None and firmware.status is FirmwareStatus.ACTIVE:
            from resolvers.writes.mutations import withdraw  # the one way a firmware is withdrawn

            work.log.append(withdraw(firmware, row.reason, on=row.effective_on))
    else:
        pathway = await session.get(UpgradePathway, row.pathway_id)
        if pathway is not None and pathway.status is PathwayStatus.PUBLISHED:
            from resolvers.writes.mutations import withdraw_edge

            work.log.append(await withdraw_edge(work, pathway, row.reason))
    await session.flush()
    return True


async def due(session: AsyncSession, today: date) -> list[ScheduledWithdrawal]:
    statement = (
        select(ScheduledWithdrawal)
        .where(
            col(ScheduledWithdrawal.applied_at).is_(None),
            col(ScheduledWithdrawal.effective_on) <= today,
        )
        .order_by(col(ScheduledWithdrawal.effective_on), col(ScheduledWithdrawal.id))
    )
    return list((await session.exec(statement)).all())


async def apply_due(writes: UnitOfWork, sessions: async_sessionmaker[AsyncSession]) -> int:
    """Apply every withdrawal whose day has come (by the unit of work's clock, UTC), each in a
    unit of work of its own as its scheduler; returns how many this process applied. Nothing
    due costs one read and no write (the data revision is not bumped)."""
    async with sessions() as session:
        rows = await due(session, writes.clock().date())
    applied = 0
    for row in rows:

        async def write(work: Work, row: ScheduledWithdrawal = row) -> bool:
            return await _apply(work, row)

        if await writes.run(_actor(row), Scope(every_row=True), write):
            applied += 1
            logger.info("scheduled withdrawal %s applied", row.id)
    return applied
