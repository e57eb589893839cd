"""GraphQL names worked out once: Strawberry camel-cases a field's or an argument's Python name
on every call that converts arguments (each argument of `devices`, on every request, some 10 µs
of an uncached page), though the names are the schema's and never change."""

from __future__ import annotations

from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter


class KnownNames(NameConverter):
    """Strawberry's names, each Python name converted once (they are the schema's: bounded)."""

    def __init__(self) -> None:
        super().__init__(auto_camel_case=True)
        self.known: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self.known.get(name)
        if converted is None:
            converted = self.known[name] = super().apply_naming_config(name)
        return converted


def schema_config() -> StrawberryConfig:
    """Strawberry's defaults, with the names converted once."""
    return StrawberryConfig(name_converter=KnownNames())
