"""The policy table's permission matrix, rendered and written into the README (`make docs`)."""

from __future__ import annotations

import sys
from pathlib import Path

from permissions.policy import ALLOWED, POLICY, ROW_SCOPES, Rule
from permissions.principal import PartyCategory

START, END = "<!-- permission-matrix:start -->", "<!-- permission-matrix:end -->"


def _mark(category: PartyCategory, rule: Rule) -> str:
    if category not in ALLOWED[rule]:
        return "no"
    scope = ROW_SCOPES.get(rule)
    return scope.mark if scope is not None and category in scope.categories else "yes"


def render_matrix() -> str:
    """The README's permission matrix: restricted fields one per row, the public rest in one."""
    categories = list(PartyCategory)
    header = "| field | " + " | ".join(c.value for c in categories) + " |"
    lines = [header, "|" + " --- |" * (len(categories) + 1)]
    public = 0
    for type_name, fields in POLICY.items():
        for field_name, rule in fields.items():
            if rule is Rule.PUBLIC:
                public += 1
                continue
            marks = " | ".join(_mark(c, rule) for c in categories)
            lines.append(f"| `{type_name}.{field_name}` ({rule.value}) | {marks} |")
    marks = " | ".join("yes" for _ in categories)
    lines.append(f"| every other field and argument ({public}) | {marks} |")
    return "\n".join(lines)


def main(path: str) -> None:
    readme = Path(path)
    text = readme.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{render_matrix()}\n{END}{tail}")


if __name__ == "__main__":
    main(sys.argv[1])
