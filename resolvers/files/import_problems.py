"""What is wrong with the rows of an imported file, one line per bad row.

The checks are the mutations' own (`resolvers.writes.validation`, `resolvers.writes.write_rules`),
which name GraphQL input fields; here those names become the file's column names, so a line says
`row 7: model_identifier must be 4 hex digits.` Messages never hold an SSC-only value: the
validators never echo values, and the import's own messages name columns only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from resolvers.writes import validation as v

T = TypeVar("T")

COLUMN_OF = {
    "manufacturerIdentifier": "manufacturer_identifier",
    "modelIdentifier": "model_identifier",
    "modelName": "model_name",
    "hardwareVersion": "hardware_version",
    "deviceType": "device_type",
    "zigbeeBand": "zigbee_band",
    "zigbeeStackVersion": "zigbee_stack_version",
    "zigbeeChipsetVendor": "zigbee_chipset_vendor",
    "version": "firmware_version",
    "imageHash": "image_hash",
    "addedToCplOn": "added_to_cpl_on",
    "fromVersion": "from_version",
    "toVersion": "to_version",
    "notes": "notes",
    "cplEntryId": "cpl_entry_id",
    "gbcsVersion": "gbcs_version",
    "smetsChtsVersion": "smets_chts_version",
    "cpaCertificate": "cpa_certificate_reference",
    "firmwareContact": "firmware_contact",
}


def describe(failure: v.MutationFailure) -> str:
    """A mutation's failure in the file's terms: its field renamed to the column."""
    if failure.field is None:
        return failure.message
    column = COLUMN_OF.get(failure.field, failure.field)
    message = failure.message.replace(failure.field, column)
    return message if message.startswith(column) else f"{column}: {message}"


class Problems:
    """Problems by row number, reported in row order, one line per row."""

    def __init__(self) -> None:
        self._by_row: dict[int, list[str]] = {}

    def add(self, row: int, problem: str) -> None:
        found = self._by_row.setdefault(row, [])
        if problem not in found:
            found.append(problem)

    def check(self, row: int, rule: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """`rule(*args, **kwargs)`, or None with its failure noted against `row`."""
        try:
            return rule(*args, **kwargs)
        except v.MutationFailure as failure:
            self.add(row, describe(failure))
            return None

    def has(self, row: int) -> bool:
        return row in self._by_row

    def __bool__(self) -> bool:
        return bool(self._by_row)

    def lines(self) -> list[str]:
        return [
            f"row {row}: {' '.join(problems)}" for row, problems in sorted(self._by_row.items())
        ]


def choice(problems: Problems, row: int, kind: type[T], value: str | None, column: str) -> Any:
    """An enum member from a cell (any case), None for an empty cell or a noted problem."""
    if value is None:
        return None
    try:
        return kind(value.strip().upper())  # type: ignore[call-arg]  # kind is an Enum class; T has no bound
    except ValueError:
        names = ", ".join(member.value for member in kind)  # type: ignore[attr-defined]  # kind is an Enum class; T has no bound
        problems.add(row, f"{column} must be one of {names}.")
        return None
