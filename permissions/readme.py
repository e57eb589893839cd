"""Write the policy table's permission matrix into the README (`make docs`)."""

from __future__ import annotations

import sys
from pathlib import Path

from permissions.policy import render_matrix

START, END = "<!-- permission-matrix:start -->", "<!-- permission-matrix:end -->"


def main(path: str) -> None:
    readme = Path(path)
    text = readme.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{render_matrix()}\n{END}{tail}")


if __name__ == "__main__":
    main(sys.argv[1])
