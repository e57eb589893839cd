"""The Manufacturer portals' mutations, generated from one table of specs (`MUTATIONS`).

Each runs its write (`resolvers.writes.mutations`) in a unit of work, with the input's fields as the
write's keywords, so no input is restated. Every payload is a union of a success type holding
the changed object and error types that implement `MutationError`. A caller who may not run a
mutation gets a top-level FORBIDDEN error and a null field, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.exc import IntegrityError
from strawberry.tools import create_type
from strawberry.types import Info

from permissions.principal import Principal
from permissions.row_scopes import row_scope
from permissions.strawberry_adapter import forbidden, policy_directives
from resolvers.reads.snapshot import in_view
from resolvers.writes import entries, prerequisites, withdrawals
from resolvers.writes import mutations as writes
from resolvers.writes import validation as v
from resolvers.writes.idempotency import IdempotencyKey, request_hash
from resolvers.writes.unit_of_work import Work
from schema.ids import BAD_USER_INPUT, decode_id
from schema.prerequisites import Prerequisite
from schema.types import Device, DeviceType, Firmware, Manufacturer, UpgradePathway, ZigbeeBand

# --- errors ---------------------------------------------------------------------------------


@strawberry.interface
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


ERROR_TYPES: dict[str, type[ValidationError | NotFoundError | ConflictError]] = {
    "VALIDATION": ValidationError,
    "NOT_FOUND": NotFoundError,
    "CONFLICT": ConflictError,
}

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
class CpaCertificateInput:
    reference: str
    expires_on: date | None = None


@strawberry.input
class AddFirmwareInput:
    device_id: strawberry.ID
    version: str
    image_hash: str | None = None
    added_to_cpl_on: date | None = None
    cpl_entry_id: str | None = None
    gbcs_version: str | None = None
    smets_chts_version: str | None = None
    cpa_certificate: CpaCertificateInput | None = None
    zigbee_stack_version: str | None = None
    upgradable_from: list[str] | None = None
    upgradable_from_entries: list[str] | None = None
    no_earlier_version: bool | None = None
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
    effective_on: date | None = None


@strawberry.input
class WithdrawFirmwareInput:
    firmware_id: strawberry.ID
    reason: str
    idempotency_key: str | None = None
    effective_on: date | None = None


@strawberry.input
class SetZigbeeInformationInput:
    device_id: strawberry.ID
    zigbee_band: ZigbeeBand | None = None
    zigbee_stack_version: str | None = None
    zigbee_chipset_vendor: str | None = None
    reason: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class SetFirmwareContactInput:
    manufacturer_identifier: str
    firmware_contact: str
    idempotency_key: str | None = None


@strawberry.input
class DeclarePrerequisiteInput:
    firmware_id: strawberry.ID
    requires_device_type: DeviceType
    requires_any_of_firmware: list[strawberry.ID] | None = None
    requires_gbcs_version: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class WithdrawPrerequisiteInput:
    prerequisite_id: strawberry.ID
    reason: str
    idempotency_key: str | None = None


# --- the table of mutations, and the one way each runs ----------------------------------------

Errors = ValidationError | NotFoundError | ConflictError


@dataclass(frozen=True)
class MutationSpec:
    """One mutation: its GraphQL name, input, write, and the kind of object it returns (the
    name of its success type's field: `manufacturer`, `device`, `firmware`, `pathway` or
    `prerequisite`); `listed`, the input fields holding a list of ids, and their kind; `replay`,
    what loads an idempotent retry's first result."""

    name: str
    input: type
    write: Callable[..., Awaitable[Any]]
    kind: str
    result: type
    listed: Mapping[str, str] = field(default_factory=dict)
    replay: Callable[..., Awaitable[Any]] = writes.replay
    success: type = field(init=False)
    ids: frozenset[str] = field(init=False)  # input fields holding an id of `<field>_id`'s kind
    arguments: tuple[str, ...] = field(init=False)  # the write's keywords: all but the key

    def __post_init__(self) -> None:
        title = self.name[0].upper() + self.name[1:]
        success = strawberry.type(
            type(f"{title}Success", (), {"__annotations__": {self.kind: self.result}})
        )
        object.__setattr__(self, "success", success)
        fields = self.input.__strawberry_definition__.fields  # type: ignore[attr-defined]  # strawberry.input sets it at runtime
        ids = frozenset(f.python_name for f in fields if f.type is strawberry.ID)
        object.__setattr__(self, "ids", ids)
        names = tuple(f.python_name for f in fields if f.python_name != "idempotency_key")
        object.__setattr__(self, "arguments", names)

    @property
    def payload(self) -> Any:
        union = strawberry.union(f"{self.success.__name__.removesuffix('Success')}Payload")
        return Annotated[self.success | Errors, union]


MUTATIONS = (
    MutationSpec("addDevice", AddDeviceInput, writes.add_device, "device", Device),
    MutationSpec("addFirmware", AddFirmwareInput, writes.add_firmware, "firmware", Firmware),
    MutationSpec(
        "publishUpgradePathway",
        PublishUpgradePathwayInput,
        writes.publish_pathway,
        "pathway",
        UpgradePathway,
    ),
    MutationSpec(
        "correctUpgradePathway",
        CorrectUpgradePathwayInput,
        writes.correct_pathway,
        "pathway",
        UpgradePathway,
    ),
    MutationSpec(
        "withdrawUpgradePathway",
        WithdrawUpgradePathwayInput,
        writes.withdraw_pathway,
        "pathway",
        UpgradePathway,
    ),
    MutationSpec(
        "withdrawFirmware", WithdrawFirmwareInput, writes.withdraw_firmware, "firmware", Firmware
    ),
    MutationSpec(
        "setZigbeeInformation",
        SetZigbeeInformationInput,
        writes.set_zigbee_information,
        "device",
        Device,
    ),
    MutationSpec(
        "setFirmwareContact",
        SetFirmwareContactInput,
        entries.set_firmware_contact,
        "manufacturer",
        Manufacturer,
    ),
    MutationSpec(
        "declarePrerequisite",
        DeclarePrerequisiteInput,
        prerequisites.declare_prerequisite,
        "prerequisite",
        Prerequisite,
        listed={"requires_any_of_firmware": "firmware"},
        replay=prerequisites.replay,
    ),
    MutationSpec(
        "withdrawPrerequisite",
        WithdrawPrerequisiteInput,
        prerequisites.withdraw_prerequisite,
        "prerequisite",
        Prerequisite,
        replay=prerequisites.replay,
    ),
)


def _keywords(spec: MutationSpec, data: Any) -> dict[str, Any]:
    """The write's keywords: the input's fields but the idempotency key, ids decoded (an id
    that does not decode is None: the write answers NOT_FOUND)."""
    keywords = {}
    for name in spec.arguments:
        value = getattr(data, name)
        if name in spec.ids:
            value = decode_id(name.removesuffix("_id"), value)
        elif name in spec.listed and value is not None:
            value = [decode_id(spec.listed[name], item) for item in value]
        keywords[name] = value
    return keywords


async def run_mutation(info: Info, spec: MutationSpec, data: Any) -> Any:
    principal: Principal = info.context.principal
    try:
        key = v.text(data.idempotency_key, "idempotencyKey", v.MAX_IDEMPOTENCY_KEY)
        idempotency = None
        if key:
            arguments = {
                k: val for k, val in strawberry.asdict(data).items() if k != "idempotency_key"
            }
            digest = request_hash(spec.name, arguments)
            idempotency = IdempotencyKey(key, spec.name, digest, spec.kind, spec.replay)
        keywords = _keywords(spec, data)

        async def write(work: Work) -> Any:
            return await spec.write(work, **keywords)

        scope = row_scope(principal, "Mutation", spec.name)
        row = await info.context.services.writes.run(principal, scope, write, idempotency)
        info.context.forget_reads()
        return spec.success(**{spec.kind: in_view(row, info.context.loaders.granted)})
    except v.MutationFailure as failure:
        return ERROR_TYPES[failure.code](
            code=failure.code, message=failure.message, field=failure.field
        )
    except withdrawals.PastDate as past:
        raise GraphQLError(str(past), extensions={"code": BAD_USER_INPUT}) from None
    except writes.NotAllowed:
        raise forbidden("Forbidden: you may change only your own manufacturer's devices.") from None
    except IntegrityError:
        # Only reachable when a concurrent writer won a uniqueness race.
        return ConflictError(
            code="CONFLICT", message="A concurrent change conflicts with this one.", field=None
        )


def _mutation(spec: MutationSpec) -> Any:
    async def resolve(info: Info, input: Any) -> Any:
        return await run_mutation(info, spec, input)

    resolve.__annotations__ = {"info": Info, "input": spec.input, "return": spec.payload | None}
    resolve.__name__ = "".join(f"_{c.lower()}" if c.isupper() else c for c in spec.name)
    return strawberry.mutation(
        resolver=resolve, name=spec.name, directives=policy_directives("Mutation", spec.name)
    )


Mutation = create_type("Mutation", [_mutation(spec) for spec in MUTATIONS])
