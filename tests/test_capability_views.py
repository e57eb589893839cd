"""The policy where the data is read: each caller reads the CPL through the view of its
capability, a snapshot that holds no value the capability is not granted (issue: a restricted
value reached a Supplier through a road the document pass did not guard)."""

from __future__ import annotations

import pytest

from models.tables import Device
from permissions.policy import capability, hidden_fields
from permissions.principal import PartyCategory
from resolvers.reads.snapshot import hidden_columns, in_view

NON_SSC = [c for c in PartyCategory if c is not PartyCategory.SSC]


@pytest.mark.parametrize("category", NON_SSC)
async def test_a_non_ssc_view_holds_no_ssc_only_value(services, category):
    snapshot = await services.snapshots.current()
    view = snapshot.view(capability(category))
    assert view is not snapshot
    assert view is snapshot.view(capability(category))  # made once per (revision, capability)
    assert hidden_columns(capability(category)) == {
        "devices": ("zigbee_chipset_vendor", "zigbee_stack_version"),
        "firmware": ("zigbee_stack_version",),
    }
    devices = list(view.devices.values())
    assert len(devices) == len(snapshot.devices) == 12
    every_row = [
        *devices,
        *(row for rows in view.devices_of_manufacturer.values() for row in rows),
    ]
    assert all(
        r.zigbee_stack_version is None and r.zigbee_chipset_vendor is None for r in every_row
    )
    # Everything else is the snapshot's, value for value.
    for row in devices:
        original = snapshot.devices[row.id]
        assert row._replace(zigbee_stack_version=None, zigbee_chipset_vendor=None) == row
        assert row.model_name == original.model_name and row.zigbee_band == original.zigbee_band
    # A firmware's own stack version too (the demo gives some), and nothing else of it.
    assert any(row.zigbee_stack_version for row in snapshot.firmware.values())
    assert all(row.zigbee_stack_version is None for row in view.firmware.values())
    assert view.firmware == {
        key: row._replace(zigbee_stack_version=None) for key, row in snapshot.firmware.items()
    }
    assert view.pathways == snapshot.pathways


async def test_the_ssc_view_is_the_whole_snapshot(services):
    snapshot = await services.snapshots.current()
    view = snapshot.view(capability(PartyCategory.SSC))
    assert view is snapshot
    assert all(row.zigbee_chipset_vendor for row in view.devices.values())


def test_every_capability_hides_what_the_policy_table_denies():
    for category in PartyCategory:
        granted = capability(category)
        hidden = hidden_fields(granted, "Device")
        if category is PartyCategory.SSC:
            assert hidden == frozenset()
            assert hidden_fields(granted, "Firmware") == frozenset()
        else:
            assert hidden == {"zigbeeStackVersion", "zigbeeChipsetVendor"}
            assert hidden_fields(granted, "Firmware") == {"zigbeeStackVersion"}
        hidden_columns(granted)  # every restricted field has a column to hide


def test_a_row_read_outside_the_snapshot_goes_through_the_view():
    device = Device(
        id=7,
        manufacturer_id=1,
        device_type="ESME",
        model_identifier="0001",
        model_name="Meter",
        hardware_version="0100",
        zigbee_stack_version="ZB-PRO 2017 r22",
        zigbee_chipset_vendor="Lumen Silicon",
    )
    supplier = in_view(device, capability(PartyCategory.SMALL_SUPPLIER))
    assert supplier.zigbee_stack_version is None and supplier.zigbee_chipset_vendor is None
    assert supplier.id == 7 and supplier.model_name == "Meter"
    ssc = in_view(device, capability(PartyCategory.SSC))
    assert ssc.zigbee_chipset_vendor == "Lumen Silicon"
