"""The fields of `Query.devices`' filter, declared once.

Each filter field matches one value a caller could otherwise read: a field of the device, or its
manufacturer's identifier, under the same GraphQL name. So each takes that field's rule from the
policy table (`permissions.policy`): a filter can never probe a value its caller may not read.
The Strawberry input (`schema.inputs.DeviceFilter`), the search (`resolvers.reads.devices`) and the
table's `DeviceFilter` entry (and with it the SDL's directives and the README's matrix) are all
derived from this list, so a new filter is one line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.tables import DeviceType, ZigbeeBand

__all__ = ["DEVICE_FILTER", "FilterField"]


@dataclass(frozen=True, slots=True)
class FilterField:
    """One field of `DeviceFilter`: a value that, when set, a device must match."""

    name: str  # its GraphQL name, and the name of the field of `on` whose value it matches
    value_type: type  # the GraphQL input's type (null meaning "any")
    on: str  # "Device", or "Manufacturer" for the device's manufacturer
    column: str  # the attribute of that row it is compared with
    case_free: bool = False  # an identifier: matched in any case, spaces around it ignored


DEVICE_FILTER: tuple[FilterField, ...] = (
    FilterField("manufacturerIdentifier", str, "Manufacturer", "identifier", case_free=True),
    FilterField("deviceType", DeviceType, "Device", "device_type"),
    FilterField("modelIdentifier", str, "Device", "model_identifier", case_free=True),
    FilterField("hardwareVersion", str, "Device", "hardware_version", case_free=True),
    FilterField("zigbeeBand", ZigbeeBand, "Device", "zigbee_band"),
    FilterField("zigbeeStackVersion", str, "Device", "zigbee_stack_version"),
    FilterField("zigbeeChipsetVendor", str, "Device", "zigbee_chipset_vendor"),
)
