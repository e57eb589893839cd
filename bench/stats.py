"""Timings as the benchmarks report them: seconds per call (percentiles by nearest rank), and
what one run of the planning benchmark measured."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.generate import SyntheticCpl


@dataclass
class Stats:
    """Seconds per call; percentiles by nearest rank."""

    values: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.values)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else math.nan

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else math.nan

    @property
    def median(self) -> float:
        return self.p50


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def sec(seconds: float) -> str:
    return f"{seconds:.2f}"


@dataclass
class FleetTiming:
    items: int
    devices: int
    statements: int = 0
    cold: float = math.nan
    warm: Stats = field(default_factory=Stats)
    baseline: Stats = field(default_factory=Stats)
    request_bytes: int = 0
    response_bytes: int = 0


@dataclass
class RunResult:
    backend: str
    scale: str
    cpl: SyntheticCpl
    load_seconds: float
    api: Stats = field(default_factory=Stats)
    baseline: Stats = field(default_factory=Stats)
    http: Stats = field(default_factory=Stats)
    fleet: dict[int, FleetTiming] = field(default_factory=dict)
    server_peak_kib: int = 0
    bench_peak_kib: int = 0
    checked_pairs: int = 0
    checked_items: int = 0


def say(message: str) -> None:
    print(message, flush=True)
