"""`POST /fleet-plan.csv?summary=true`: the fleet file's meters by outcome, and the blocked
ones by why, instead of a row per meter (`server.fleet_file` plans them the same way).

One line per outcome that some row has, in this order: `up_to_date`, `upgradable`,
`blocked` once per reason (`PlanBlockReason`'s order: `NO_PATHWAY` is a dead end,
`PATHWAYS_NOT_SUPPLIED` a gap in the Manufacturer's data), and `problem` for rows that could
not be planned; each with its rows and their meters (a row that could not be read counts no
meters; a premises row counts once for each of its devices updated over the air, in that
device's outcome, with its `premises_count` as meters). The columns are
`outcome,reason,rows,meters`.
"""

from __future__ import annotations

from resolvers.planning.planner import BlockReason, Plan

SUMMARY_COLUMNS = ("outcome", "reason", "rows", "meters")
_ORDER = ["up_to_date", "upgradable", *(f"blocked:{r.value}" for r in BlockReason), "problem"]


def wants_summary(query_string: bytes) -> bool:
    """Whether the request asks for the summary (`summary=true` or `summary=1`)."""
    for part in query_string.decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name == "summary" and value.lower() in ("true", "1"):
            return True
    return False


class Tally:
    """Rows and meters by outcome, added a batch at a time."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}

    def add(self, plan: Plan | None, meters: int) -> None:
        """A row: its plan (None: it has a problem) and its meter count."""
        if plan is None:
            outcome = "problem"
        elif plan.reachable:
            outcome = "upgradable" if plan.steps else "up_to_date"
        else:
            outcome = f"blocked:{plan.reason.value if plan.reason else ''}"
        self.count(outcome, meters)

    def count(self, outcome: str, meters: int) -> None:
        """A row of `outcome` (`up_to_date`, `upgradable`, `blocked:<reason>` or `problem`)."""
        found = self.counts.setdefault(outcome, [0, 0])
        found[0] += 1
        found[1] += max(meters, 0)

    def lines(self) -> list[list[str]]:
        """The summary's lines, header first."""
        lines = [list(SUMMARY_COLUMNS)]
        for outcome in sorted(self.counts, key=_ORDER.index):
            rows, meters = self.counts[outcome]
            name, _, reason = outcome.partition(":")
            lines.append([name, reason, str(rows), str(meters)])
        return lines
