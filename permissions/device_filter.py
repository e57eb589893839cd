"""The fields of `Query.devices`' filter, declared once.

Each filter field matches one value a caller could otherwise read: a field of the device, or its
manufacturer's identifier, under the same GraphQL name; a qualifier (`zigbeeMatch`) says how
others match. So each takes the rule of the field it matches or qualifies from the policy table
(`permissions.policy`): a filter can never probe a value its caller may not read.
The Strawberry input (`schema.inputs.DeviceFilter`), the search (`resolvers.reads.devices`) and the
table's `DeviceFilter` entry (and with it the SDL's directives and the README's matrix) are all
derived from this list, so a new filter is one line here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from models.tables import DeviceType, ZigbeeBand

__all__ = ["DEVICE_FILTER", "FilterField", "TextMatch"]


class TextMatch(enum.Enum):
    """How a free-text SSC-only value is matched: whole, or by its start; case is ignored
    either way ("lumen silicon" finds "Lumen Silicon")."""

    EXACT_IGNORE_CASE = "EXACT_IGNORE_CASE"
    PREFIX = "PREFIX"


@dataclass(frozen=True, slots=True)
class FilterField:
    """One field of `DeviceFilter`: a value that, when set, a device must match."""

    name: str  # its GraphQL name, and the name of the field of `on` whose value it matches
    value_type: type  # the GraphQL input's type (null meaning "any")
    on: str  # "Device", or "Manufacturer" for the device's manufacturer
    column: str | None  # the attribute of that row it is compared with; None: a qualifier
    case_free: bool = False  # an identifier: matched in any case, spaces around it ignored
    text_match: bool = False  # free text, matched as `zigbeeMatch` says (`TextMatch`)
    qualifies: str | None = None  # a qualifier: the field whose rule it takes

    @property
    def rule_of(self) -> str:
        """The field of `on` whose rule this filter takes: the one it matches or qualifies."""
        return self.qualifies or self.name


DEVICE_FILTER: tuple[FilterField, ...] = (
    FilterField("manufacturerIdentifier", str, "Manufacturer", "identifier", case_free=True),
    FilterField("deviceType", DeviceType, "Device", "device_type"),
    FilterField("modelIdentifier", str, "Device", "model_identifier", case_free=True),
    FilterField("hardwareVersion", str, "Device", "hardware_version", case_free=True),
    FilterField("zigbeeBand", ZigbeeBand, "Device", "zigbee_band"),
    FilterField("zigbeeStackVersion", str, "Device", "zigbee_stack_version", text_match=True),
    FilterField("zigbeeChipsetVendor", str, "Device", "zigbee_chipset_vendor", text_match=True),
    # How the two above match (null: EXACT_IGNORE_CASE); SSC only, like the fields it qualifies.
    FilterField("zigbeeMatch", TextMatch, "Device", None, qualifies="zigbeeStackVersion"),
)
