"""wrk for ``bench.read``: its command and Lua script, its report parsed, and runs pooled.

wrk reports percentiles of one run only, and percentiles do not average: the p99 of three
short rounds is not the mean (nor the median) of their three p99s. So the script's ``done``
also prints the run's request count and its latency at a grid of percentiles, and the rounds'
latencies are pooled from those, each run weighted by its requests.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# wrk leaves a request slower than its timeout (2 s unless told) out of its latencies and counts
# it as an error instead, so at 2 s a stall of 9 s read as a p99 of 190 ms and "timeout 23".
TIMEOUT_SECONDS = 30
# Percentiles printed by every run: 1 % steps where a pooled median is read, 0.1 % steps up the
# tail where the pooled p99 is read, then the slowest (wrk's percentile(100) answers 0). wrk
# walks its histogram once a percentile, so few enough.
GRID = (*range(1, 95), *(round(95 + tenth / 10, 1) for tenth in range(50)))
DONE = (
    "function done(summary, latency, requests)\n"
    '  io.write(string.format("pooled n %d\\n", summary.requests))\n'
    "  for _, p in ipairs({" + ", ".join(map(str, GRID)) + "}) do\n"
    '    io.write(string.format("pooled q %g %d\\n", p, latency:percentile(p)))\n'
    "  end\n"
    '  io.write(string.format("pooled q 100 %d\\n", latency.max))\n'
    "end\n"
)


@dataclass
class Run:
    """One wrk process's run: its rate, errors, and latency (ms) at each GRID percentile."""

    rps: float
    errors: int
    requests: int
    quantiles: list[tuple[float, float]]


@dataclass
class Load:
    """What a table row shows: a request rate and the latency of every request behind it."""

    rps: float
    p50_ms: float
    p99_ms: float
    slowest_ms: float
    errors: int


def wrk_command(
    url: str, script: Path, connections: int, seconds: int, args: Sequence[str] = ()
) -> list[str]:
    """wrk's command line; `args` go to the script's `init` (``bodies_script``: where to start)."""
    return [shutil.which("wrk") or "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
            f"--timeout={TIMEOUT_SECONDS}s", "--latency", "-s", str(script), url,
            *(("--", *args) if args else ())]  # fmt: skip


def wrk_script(directory: Path, token: str, query: str) -> Path:
    """wrk's Lua: one GraphQL query, posted with the caller's token."""
    return bodies_script(
        directory, {"Authorization": f"Bearer {token}"}, [json.dumps({"query": query})]
    )


# Many bodies: each request the next of a table of requests formatted once, in `init`, from
# the place the script's argument names (0 unless told), round the table.
CYCLE = """local requests, turn = {}, 0
function init(args)
  for i, body in ipairs(bodies) do requests[i] = wrk.format(nil, nil, nil, body) end
  turn = (tonumber(args[1]) or 0) % #requests
end
function request()
  turn = turn % #requests + 1
  return requests[turn]
end
"""


def bodies_script(directory: Path, headers: dict[str, str], bodies: Sequence[str]) -> Path:
    """wrk's Lua: JSON bodies POSTed with `headers`; one body is wrk's own static request,
    several are posted in turn (`CYCLE`); the pooling lines at the end."""
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    if len(bodies) == 1:
        lines.append(f"wrk.body = {json.dumps(bodies[0])}")
    else:
        lines += ["bodies = {", *(f"  {json.dumps(body)}," for body in bodies), "}", CYCLE]
    text = "\n".join(lines) + "\n" + DONE
    script = directory / f"post-{hashlib.sha256(text.encode()).hexdigest()[:16]}.lua"
    script.write_text(text)
    return script


def parse_wrk(out: str) -> Run:
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"^pooled n (\d+)$", out, re.M)
    assert rps and requests, out
    quantiles = [
        (float(p), int(us) / 1000) for p, us in re.findall(r"^pooled q ([\d.]+) (\d+)$", out, re.M)
    ]
    assert len(quantiles) == len(GRID) + 1, out
    return Run(float(rps.group(1)), errors, int(requests.group(1)), quantiles)


def wrk(
    urls: list[str], script: Path, connections: int, seconds: int, args: Sequence[str] = ()
) -> list[Run]:
    """wrk against each URL at once (one process each, the connections shared out)."""
    processes = [
        subprocess.Popen(  # noqa: S603 - wrk from Debian's package, loopback only
            wrk_command(url, script, max(1, connections // len(urls)), seconds, args),
            stdout=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    return [parse_wrk(process.communicate(timeout=seconds + 60)[0]) for process in processes]


def pooled_percentile(runs: list[Run], percent: float) -> float:
    """The latency below which `percent` of all the runs' requests fall, from each run's GRID:
    at a candidate latency a run counts the highest of its percentiles not above it, so the
    answer errs, by at most a grid step, on the slow side (and is exact for one run)."""
    total = sum(run.requests for run in runs) or 1
    latencies = [[ms for _, ms in run.quantiles] for run in runs]  # ascending, as GRID is
    for candidate in sorted({ms for one in latencies for ms in one}):
        below = 0.0
        for run, one in zip(runs, latencies, strict=True):
            if (index := bisect.bisect_right(one, candidate)) > 0:
                below += run.requests * run.quantiles[index - 1][0]
        if below / total >= percent - 1e-9:
            return candidate
    return max(ms for one in latencies for ms in one)


def round_rps(runs: list[Run]) -> float:
    """One round's rate: the processes loaded at once add up."""
    return sum(run.rps for run in runs)


def summary(rounds: list[list[Run]]) -> Load:
    """Over rounds: the median rate; p50, p99 and the slowest of all the rounds' requests."""
    runs = [run for one in rounds for run in one]
    return Load(
        statistics.median(round_rps(one) for one in rounds),
        pooled_percentile(runs, 50),
        pooled_percentile(runs, 99),
        max(run.quantiles[-1][1] for run in runs),
        sum(run.errors for run in runs),
    )


def median_ratio(ours: list[list[Run]], theirs: list[list[Run]]) -> float:
    """The median over rounds of the rate's ratio within each round, so that what drifts between
    rounds divides out."""
    return statistics.median(round_rps(a) / round_rps(b) for a, b in zip(ours, theirs, strict=True))
