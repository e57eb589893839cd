"""The read benchmark's tables: what was measured (`Measured`) made into rows, a backend's and
CPL's table, and the text above the tables."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass, field

from bench.read_scenarios import DISTINCT, SCENARIOS
from bench.wrk import Load, Run, median_ratio, summary

BASELINE = "baseline"
# The targets, as ratios to the baseline: by the API's mode, and for `distinct`, the response
# cache missed, as uncached.
LEAST_RATIO = {"warm": 0.8, "uncached": 0.33, DISTINCT: 0.33}
SAME_AS_SUPPLIER = 0.05  # `ssc` and `denied` within 5 % of `supplier`
AGAINST_SUPPLIER = tuple(name for name in SCENARIOS if name != "supplier")
BURST_CLIENTS, BURST_P99_MS = 200, 250.0
Key = tuple[str, str]  # (server, scenario)


@dataclass
class Measured:
    """Each (server, scenario)'s runs, one a round (each a wrk run a URL), the server's CPU
    time an answer in each (µs), and the response cache's (hits, misses) over them; and the
    200-client runs, one a (server, scenario)."""

    runs: dict[Key, list[list[Run]]] = field(default_factory=dict)
    cpu: dict[Key, list[float]] = field(default_factory=dict)
    lookups: dict[Key, list[tuple[int, int]]] = field(default_factory=dict)
    bursts: dict[Key, tuple[Load, tuple[int, int]]] = field(default_factory=dict)


def mark(met: bool) -> str:
    return "✅" if met else "❌"


def hit_rate(lookups: list[tuple[int, int]]) -> str:
    hits, misses = sum(h for h, _ in lookups), sum(m for _, m in lookups)
    return f"{hits / (hits + misses):.1%}" if hits + misses else ""


def against_supplier(ratio: float) -> str:
    """Shown, not judged: rates and CPU time drift more than 5 % here from run to run, so the
    target is judged on instructions (`bench.read_cost`)."""
    return f"{ratio - 1:+.1%}"


def least_ratio(where: str, name: str) -> float | None:
    return LEAST_RATIO.get(name if name == DISTINCT else where)


def scenario_row(label: str, where: str, name: str, measured: Measured) -> str:
    """A scenario's line: its medians, its ratio to the baseline and, for `ssc` and `denied`,
    what asking for the SSC fields (allowed or denied) costs more than `supplier`, in rate and
    in the server's CPU an answer (each the median of the ratios within a round)."""
    runs, cpu = measured.runs, measured.cpu
    ours = runs[where, name]
    load = summary(ours)
    theirs = runs.get((BASELINE, name))
    baseline = f"{summary(theirs).rps:,.0f}" if theirs else ""
    ratio = ""
    if theirs:
        value = median_ratio(ours, theirs)
        least = least_ratio(where, name)
        ratio = f"{value:.2f}x" + (f" {mark(value >= least)}" if least is not None else "")
    rate_against = cpu_against = ""
    if name in AGAINST_SUPPLIER and (where, "supplier") in runs:
        rate_against = against_supplier(median_ratio(ours, runs[where, "supplier"]))
        pairs = zip(cpu[where, name], cpu[where, "supplier"], strict=True)
        cpu_against = against_supplier(statistics.median(a / b for a, b in pairs))
    cells = [label, name, f"{load.rps:,.0f}", baseline, ratio, rate_against,
             f"{statistics.median(cpu[where, name]):,.0f}", cpu_against,
             f"{load.p50_ms:.1f}", f"{load.p99_ms:.1f}",
             hit_rate(measured.lookups[where, name]), ""]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def burst_row(label: str, name: str, burst: Load, lookups: tuple[int, int]) -> str:
    """A 200-client run's line; the target (p99, no errors) is the cache hit's: `supplier`."""
    met = burst.p99_ms <= BURST_P99_MS and burst.errors == 0
    judged = f" {mark(met)}" if name == "supplier" else ""
    return (
        f"| {label}, {BURST_CLIENTS} clients | {name} | {burst.rps:,.0f} | | | | | | "
        f"{burst.p50_ms:.1f} | {burst.p99_ms:.1f} | {hit_rate([lookups])} | "
        f"slowest {burst.slowest_ms:,.0f} ms, errors: {burst.errors}{judged} |"
    )


def server_rows(where: str, processes: int, measured: Measured) -> list[str]:
    """A server's rows, its scenarios as measured, then its 200-client runs."""
    label = f"{where}, {processes} process(es)"
    names = [name for (one, name) in measured.runs if one == where]
    rows = [scenario_row(label, where, name, measured) for name in names]
    rows += [
        burst_row(label, name, *measured.bursts[one, name])
        for (one, name) in measured.bursts
        if one == where
    ]
    return rows


def table(title: str, rows: list[str], rounds: int, seconds: int) -> str:
    return (
        f"\n**{title}** (over HTTP, {rounds} rounds of {seconds} s a run: "
        "req/s the median of the rounds; CPU, the server processes' CPU time an answer in µs, "
        "the median of the rounds; ratios the median of the rounds' ratios; p50 and p99 "
        "in ms, of every request of every round; hits: the response cache's, of the answers "
        "of all the rounds)\n\n"
        "| server | query | req/s | baseline req/s | ratio | vs supplier | CPU | CPU vs "
        "supplier | p50 | p99 | hits | 200 clients |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows)
    )


def machine() -> str:
    return (
        f"Measured on a {os.cpu_count()}-core {platform.machine()} machine, Python "
        f"{platform.python_version()}; wrk (one thread a process, a separate process) shares "
        "the cores with the servers. The baseline is `bench/baseline_read.py`. The baseline and "
        "the API (warm and uncached) serve at once and their runs take turns, in an order that "
        "rotates, in every round. `distinct`: the typical query, a page (`first`, `after`) "
        "drawn per request, on the warm API after a write (a new data revision). Targets: "
        f"ratio to the baseline ≥ {LEAST_RATIO['warm']}x warm and ≥ "
        f"{LEAST_RATIO['uncached']}x uncached and distinct; {BURST_CLIENTS} clients on the "
        f"warm path (`supplier`) with p99 ≤ {BURST_P99_MS:.0f} ms and no errors. `vs "
        "supplier` is shown, not judged: `ssc` and `denied` within "
        f"{SAME_AS_SUPPLIER:.0%} of `supplier` is judged on instructions (`bench.read_cost`)."
    )
