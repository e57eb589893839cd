"""The one helper that applies the policy table's row scopes (`policy.ROW_SCOPES`).

A field's rule says which categories may use it; its row scope says on whose rows: a
Manufacturer writes its own devices only, a Party sees and deletes its own webhooks only.
Resolvers ask for the caller's `Scope` under the field they serve and apply it to a loaded
row (`allows`) or to a query (`where`), so no resolver writes such a rule as an `if` of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from permissions.policy import ALLOWED, ROW_SCOPES, Rule, rule_for
from permissions.principal import Principal


@dataclass(frozen=True)
class Scope:
    """The rows a caller may act on: every row, the rows `owner` names, or none at all."""

    every_row: bool
    owner: str | None = None

    def allows(self, row_owner: str | None) -> bool:
        return self.every_row or (self.owner is not None and row_owner == self.owner)

    def where(self, column: Any) -> list[Any]:
        """The conditions that keep a query to these rows (`column` holds a row's owner)."""
        if self.every_row:
            return []
        return [column == self.owner] if self.owner is not None else [sa.false()]


NO_ROWS = Scope(every_row=False)


def row_scope(principal: Principal | None, type_name: str, field_name: str) -> Scope:
    """The caller's scope under a field's rule (`rule_scope`)."""
    return rule_scope(principal, rule_for(type_name, field_name))


def rule_scope(principal: Principal | None, rule: Rule) -> Scope:
    """The caller's scope under a rule: none at all where the rule denies the caller (deny by
    default), and an owner that is the caller's own claim where the rule scopes it."""
    if principal is None or principal.party_category not in ALLOWED[rule]:
        return NO_ROWS
    scope = ROW_SCOPES.get(rule)
    if scope is None or principal.party_category not in scope.categories:
        return Scope(every_row=True)
    return Scope(every_row=False, owner=getattr(principal, scope.owner.value))
