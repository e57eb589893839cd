"""Every description of the schema, as data: one table by area, keyed by where each goes.

Keys (`elements` lists every one the schema has):

- `Type`: an object, interface, union, enum, input or scalar type;
- `Type.field`: a field of an object or interface, or a field of an input;
- `Type.field(argument)`: an argument of a field;
- `Enum.VALUE`: a value of an enum.

A field of an object that implements an interface may go without a key of its own: it takes
the interface's (`MutationError.code` describes `ValidationError.code`). Who may read a field or
use an argument is never written here: `describe` appends it from the policy table
(`permissions.policy`), in the policy's words, to every field and input field a rule restricts,
and to every argument whose input holds one. `tests/test_descriptions.py` fails naming anything
undescribed, and any key that names nothing.
"""

from __future__ import annotations

from schema.descriptions import (
    cpl,
    entries,
    fleets,
    notice,
    notifications,
    planning,
    premises,
    writes,
)

TABLES = (
    cpl.DESCRIPTIONS,
    entries.DESCRIPTIONS,
    planning.DESCRIPTIONS,
    fleets.DESCRIPTIONS,
    notice.DESCRIPTIONS,
    premises.DESCRIPTIONS,
    writes.DESCRIPTIONS,
    notifications.DESCRIPTIONS,
)


def _merged() -> dict[str, str]:
    merged: dict[str, str] = {}
    for table in TABLES:
        twice = merged.keys() & table.keys()
        if twice:
            raise ValueError(f"described in two tables: {sorted(twice)}")
        merged |= table
    return merged


DESCRIPTIONS: dict[str, str] = _merged()
