"""Input types. Restricted input fields carry the policy's directive and are checked by it."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from permissions.strawberry_adapter import policy_directives
from resolvers.validation import CONTROL
from schema.ids import BAD_USER_INPUT
from schema.types import DeviceType, ZigbeeBand


@strawberry.input
class DeviceFilter:
    manufacturer_identifier: str | None = None
    device_type: DeviceType | None = None
    model_identifier: str | None = None
    hardware_version: str | None = None
    zigbee_band: ZigbeeBand | None = None
    zigbee_stack_version: str | None = strawberry.field(
        default=None, directives=policy_directives("DeviceFilter", "zigbeeStackVersion")
    )
    zigbee_chipset_vendor: str | None = strawberry.field(
        default=None, directives=policy_directives("DeviceFilter", "zigbeeChipsetVendor")
    )

    def check_text(self) -> None:
        """Refuse control characters, which no CPL value holds (and PostgreSQL refuses NUL)."""
        for name, value in self.as_graphql().items():
            if isinstance(value, str) and CONTROL.search(value):
                raise GraphQLError(
                    f"{name} must not contain control characters.",
                    extensions={"code": BAD_USER_INPUT},
                )

    def as_graphql(self) -> dict[str, object]:
        """The values the caller set, by GraphQL field name, for the policy check."""
        return {
            "manufacturerIdentifier": self.manufacturer_identifier,
            "deviceType": self.device_type,
            "modelIdentifier": self.model_identifier,
            "hardwareVersion": self.hardware_version,
            "zigbeeBand": self.zigbee_band,
            "zigbeeStackVersion": self.zigbee_stack_version,
            "zigbeeChipsetVendor": self.zigbee_chipset_vendor,
        }
