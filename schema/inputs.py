"""Input types. Restricted input fields carry the policy's directive and are checked by it."""

from __future__ import annotations

import strawberry

from permissions.classes import input_directives
from schema.types import DeviceType, ZigbeeBand


@strawberry.input
class DeviceFilter:
    manufacturer_identifier: str | None = None
    device_type: DeviceType | None = None
    model_identifier: str | None = None
    hardware_version: str | None = None
    zigbee_band: ZigbeeBand | None = None
    zigbee_stack_version: str | None = strawberry.field(
        default=None, directives=input_directives("DeviceFilter", "zigbeeStackVersion")
    )
    zigbee_chipset_vendor: str | None = strawberry.field(
        default=None, directives=input_directives("DeviceFilter", "zigbeeChipsetVendor")
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
