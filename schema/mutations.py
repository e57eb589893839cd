"""The Manufacturer portals' mutations. Each is one transaction with its history.

Every payload is a union of a success type holding the changed object and error types that
implement `MutationError`. A caller who may not run a mutation gets a top-level FORBIDDEN error
and a null field, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

import strawberry
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.types import Info

from models.tables import Device as DeviceRow
from models.tables import Firmware as FirmwareRow
from models.tables import UpgradePathway as PathwayRow
from permissions.classes import forbidden, policy_directives
from permissions.principal import Principal
from resolvers import mutations as writes
from resolvers import validation as v
from resolvers.idempotency import Recalled, recall, remember, request_hash
from schema.ids import decode_id
from schema.types import Device, DeviceType, Firmware, UpgradePathway, ZigbeeBand

# --- errors ---------------------------------------------------------------------------------


@strawberry.interface(description="Why a mutation changed nothing; `field` names the input.")
class MutationError:
    code: str
    message: str
    field: str | None


@strawberry.type
class ValidationError(MutationError):
    pass


@strawberry.type
class NotFoundError(MutationError):
    pass


@strawberry.type
class ConflictError(MutationError):
    pass


ERROR_TYPES = {"VALIDATION": ValidationError, "NOT_FOUND": NotFoundError, "CONFLICT": ConflictError}

# --- successes and payloads -----------------------------------------------------------------


@strawberry.type
class AddDeviceSuccess:
    device: Device


@strawberry.type
class AddFirmwareSuccess:
    firmware: Firmware


@strawberry.type
class PublishUpgradePathwaySuccess:
    pathway: UpgradePathway


@strawberry.type
class CorrectUpgradePathwaySuccess:
    pathway: UpgradePathway


@strawberry.type
class WithdrawUpgradePathwaySuccess:
    pathway: UpgradePathway


@strawberry.type
class WithdrawFirmwareSuccess:
    firmware: Firmware


@strawberry.type
class SetZigbeeInformationSuccess:
    device: Device


Errors = ValidationError | NotFoundError | ConflictError
AddDevicePayload = Annotated[AddDeviceSuccess | Errors, strawberry.union("AddDevicePayload")]
AddFirmwarePayload = Annotated[AddFirmwareSuccess | Errors, strawberry.union("AddFirmwarePayload")]
PublishUpgradePathwayPayload = Annotated[
    PublishUpgradePathwaySuccess | Errors, strawberry.union("PublishUpgradePathwayPayload")
]
CorrectUpgradePathwayPayload = Annotated[
    CorrectUpgradePathwaySuccess | Errors, strawberry.union("CorrectUpgradePathwayPayload")
]
WithdrawUpgradePathwayPayload = Annotated[
    WithdrawUpgradePathwaySuccess | Errors, strawberry.union("WithdrawUpgradePathwayPayload")
]
WithdrawFirmwarePayload = Annotated[
    WithdrawFirmwareSuccess | Errors, strawberry.union("WithdrawFirmwarePayload")
]
SetZigbeeInformationPayload = Annotated[
    SetZigbeeInformationSuccess | Errors, strawberry.union("SetZigbeeInformationPayload")
]

# --- inputs ---------------------------------------------------------------------------------


@strawberry.input
class AddDeviceInput:
    manufacturer_identifier: str
    model_identifier: str
    model_name: str
    hardware_version: str
    device_type: DeviceType
    zigbee_band: ZigbeeBand | None = None
    zigbee_stack_version: str | None = None
    zigbee_chipset_vendor: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class AddFirmwareInput:
    device_id: strawberry.ID
    version: str
    image_hash: str | None = None
    added_to_cpl_on: date | None = None
    idempotency_key: str | None = None


@strawberry.input
class PublishUpgradePathwayInput:
    device_id: strawberry.ID
    from_version: str
    to_version: str
    notes: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class CorrectUpgradePathwayInput:
    pathway_id: strawberry.ID
    expected_revision: int
    reason: str
    notes: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class WithdrawUpgradePathwayInput:
    pathway_id: strawberry.ID
    reason: str
    idempotency_key: str | None = None


@strawberry.input
class WithdrawFirmwareInput:
    firmware_id: strawberry.ID
    reason: str
    idempotency_key: str | None = None


@strawberry.input
class SetZigbeeInformationInput:
    device_id: strawberry.ID
    zigbee_band: ZigbeeBand | None = None
    zigbee_stack_version: str | None = None
    zigbee_chipset_vendor: str | None = None
    reason: str | None = None
    idempotency_key: str | None = None


# --- the one way every mutation runs ----------------------------------------------------------

ROWS = {"device": DeviceRow, "firmware": FirmwareRow, "pathway": PathwayRow}
Write = Callable[[AsyncSession, Principal], Awaitable[Any]]


@dataclass(frozen=True)
class Outcome:
    """What a mutation produces: `<field>` of its success type, and which table it lives in."""

    name: str
    kind: str
    success: Callable[[Any], Any]


class _Replay(Exception):
    """Leave the transaction without writing: the key's first result is being returned."""

    def __init__(self, row: Any) -> None:
        self.row = row


async def _replay_if_known(
    session: AsyncSession, principal: Principal, key: str, mutation: str, digest: str
) -> None:
    """Raise `_Replay` with the first result when this caller already used this key; the result
    is authorised again, as a fresh call on it would be, before it is returned."""
    found = await recall(session, principal, key, mutation, digest)
    if found is not None:
        first = await session.get(ROWS[found.kind], found.id)
        await writes.check_may_replay(session, principal, first)
        session.expunge(first)  # stays readable after the transaction rolls back
        raise _Replay(first)


async def run_mutation(info: Info, outcome: Outcome, data: Any, write: Write) -> Any:
    principal: Principal = info.context.principal
    arguments = {k: val for k, val in strawberry.asdict(data).items() if k != "idempotency_key"}
    try:
        key = v.text(data.idempotency_key, "idempotencyKey", v.MAX_IDEMPOTENCY_KEY)
        digest = request_hash(outcome.name, arguments)
        services = info.context.services
        async with services.write_session() as session:
            try:
                async with session.begin():
                    await writes.begin_write(session)
                    if key:
                        await _replay_if_known(session, principal, key, outcome.name, digest)
                    row = await write(session, principal)
                    if key:
                        remember(
                            session,
                            principal,
                            key,
                            outcome.name,
                            digest,
                            Recalled(outcome.kind, row.id),
                        )
            except _Replay as replay:
                row = replay.row
            services.committed(session.info.pop(writes.EVENTS, []))
        info.context.forget_reads()
        return outcome.success(row)
    except v.MutationFailure as failure:
        return ERROR_TYPES[failure.code](
            code=failure.code, message=failure.message, field=failure.field
        )
    except writes.NotAllowed:
        raise forbidden("Forbidden: you may change only your own manufacturer's devices.") from None
    except IntegrityError:
        # Only reachable when a concurrent writer won a uniqueness race.
        return ConflictError(
            code="CONFLICT", message="A concurrent change conflicts with this one.", field=None
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(directives=policy_directives("Mutation", "addDevice"))
    async def add_device(self, info: Info, input: AddDeviceInput) -> AddDevicePayload | None:
        return await run_mutation(
            info,
            Outcome("addDevice", "device", lambda row: AddDeviceSuccess(device=row)),
            input,
            lambda session, principal: writes.add_device(
                session,
                principal,
                manufacturer_identifier=input.manufacturer_identifier,
                model_identifier=input.model_identifier,
                model_name=input.model_name,
                hardware_version=input.hardware_version,
                device_type=input.device_type,
                zigbee_band=input.zigbee_band,
                zigbee_stack_version=input.zigbee_stack_version,
                zigbee_chipset_vendor=input.zigbee_chipset_vendor,
            ),
        )

    @strawberry.mutation(directives=policy_directives("Mutation", "addFirmware"))
    async def add_firmware(self, info: Info, input: AddFirmwareInput) -> AddFirmwarePayload | None:
        return await run_mutation(
            info,
            Outcome("addFirmware", "firmware", lambda row: AddFirmwareSuccess(firmware=row)),
            input,
            lambda session, principal: writes.add_firmware(
                session,
                principal,
                device_id=decode_id("device", input.device_id),
                version=input.version,
                image_hash=input.image_hash,
                added_to_cpl_on=input.added_to_cpl_on,
            ),
        )

    @strawberry.mutation(directives=policy_directives("Mutation", "publishUpgradePathway"))
    async def publish_upgrade_pathway(
        self,
        info: Info,
        input: PublishUpgradePathwayInput,
    ) -> PublishUpgradePathwayPayload | None:
        return await run_mutation(
            info,
            Outcome(
                "publishUpgradePathway",
                "pathway",
                lambda row: PublishUpgradePathwaySuccess(pathway=row),
            ),
            input,
            lambda session, principal: writes.publish_pathway(
                session,
                principal,
                device_id=decode_id("device", input.device_id),
                from_version=input.from_version,
                to_version=input.to_version,
                notes=input.notes,
            ),
        )

    @strawberry.mutation(directives=policy_directives("Mutation", "correctUpgradePathway"))
    async def correct_upgrade_pathway(
        self,
        info: Info,
        input: CorrectUpgradePathwayInput,
    ) -> CorrectUpgradePathwayPayload | None:
        return await run_mutation(
            info,
            Outcome(
                "correctUpgradePathway",
                "pathway",
                lambda row: CorrectUpgradePathwaySuccess(pathway=row),
            ),
            input,
            lambda session, principal: writes.correct_pathway(
                session,
                principal,
                pathway_id=decode_id("pathway", input.pathway_id),
                expected_revision=input.expected_revision,
                reason=input.reason,
                notes=input.notes,
                from_version=input.from_version,
                to_version=input.to_version,
            ),
        )

    @strawberry.mutation(directives=policy_directives("Mutation", "withdrawUpgradePathway"))
    async def withdraw_upgrade_pathway(
        self,
        info: Info,
        input: WithdrawUpgradePathwayInput,
    ) -> WithdrawUpgradePathwayPayload | None:
        return await run_mutation(
            info,
            Outcome(
                "withdrawUpgradePathway",
                "pathway",
                lambda row: WithdrawUpgradePathwaySuccess(pathway=row),
            ),
            input,
            lambda session, principal: writes.withdraw_pathway(
                session,
                principal,
                pathway_id=decode_id("pathway", input.pathway_id),
                reason=input.reason,
            ),
        )

    @strawberry.mutation(directives=policy_directives("Mutation", "withdrawFirmware"))
    async def withdraw_firmware(
        self,
        info: Info,
        input: WithdrawFirmwareInput,
    ) -> WithdrawFirmwarePayload | None:
        return await run_mutation(
            info,
            Outcome(
                "withdrawFirmware", "firmware", lambda row: WithdrawFirmwareSuccess(firmware=row)
            ),
            input,
            lambda session, principal: writes.withdraw_firmware(
                session,
                principal,
                firmware_id=decode_id("firmware", input.firmware_id),
                reason=input.reason,
            ),
        )

    @strawberry.mutation(directives=policy_directives("Mutation", "setZigbeeInformation"))
    async def set_zigbee_information(
        self,
        info: Info,
        input: SetZigbeeInformationInput,
    ) -> SetZigbeeInformationPayload | None:
        return await run_mutation(
            info,
            Outcome(
                "setZigbeeInformation",
                "device",
                lambda row: SetZigbeeInformationSuccess(device=row),
            ),
            input,
            lambda session, principal: writes.set_zigbee_information(
                session,
                principal,
                device_id=decode_id("device", input.device_id),
                zigbee_band=input.zigbee_band,
                zigbee_stack_version=input.zigbee_stack_version,
                zigbee_chipset_vendor=input.zigbee_chipset_vendor,
                reason=input.reason,
            ),
        )
