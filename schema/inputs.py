"""Input types. Restricted input fields carry the policy's directive and are checked by it."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError

from permissions.device_filter import DEVICE_FILTER, TextMatch
from permissions.strawberry_adapter import policy_directives
from resolvers.writes.validation import CONTROL
from schema.ids import BAD_USER_INPUT


class _FilterValues:
    """What `DeviceFilter` does besides holding the caller's values."""

    def values(self) -> dict[str, object]:
        """The values the caller set, by GraphQL field name: what `resolvers.reads.devices` searches
        by."""
        found = {field.name: getattr(self, field.name) for field in DEVICE_FILTER}
        return {name: value for name, value in found.items() if value is not None}

    def check_text(self) -> None:
        """Refuse control characters, which no CPL value holds (and PostgreSQL refuses NUL)."""
        for name, value in self.values().items():
            if isinstance(value, str) and CONTROL.search(value):
                raise GraphQLError(
                    f"{name} must not contain control characters.",
                    extensions={"code": BAD_USER_INPUT},
                )


# The filter's own enum, registered before `DeviceFilter` names it: Strawberry would otherwise
# make an enum of its own for the plain class, and a second one when the schema names it again.
strawberry.enum(TextMatch, name="TextMatch")


def _device_filter() -> Any:
    """`DeviceFilter` made from `permissions.device_filter`: each field optional, in the order
    declared there, with the directive of its rule."""
    namespace: dict[str, Any] = {
        field.name: strawberry.field(
            name=field.name,
            default=None,
            directives=policy_directives("DeviceFilter", field.name),
        )
        for field in DEVICE_FILTER
    }
    namespace["__annotations__"] = {field.name: field.value_type | None for field in DEVICE_FILTER}
    return strawberry.input(type("DeviceFilter", (_FilterValues,), namespace))


DeviceFilter = _device_filter()
