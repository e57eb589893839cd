"""bench/README.md's results, rewritten by each benchmark between its own markers, and the
machine they were measured on."""

from __future__ import annotations

import datetime
import os
import platform
import sqlite3
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).with_name("README.md")
START, END = "<!-- results:start -->", "<!-- results:end -->"


LIBRARIES = (
    *("strawberry-graphql", "graphql-core", "starlette", "uvicorn", "SQLAlchemy"),
    *("aiosqlite", "asyncpg", "httpx", "uvloop", "httptools"),
)


def machine(pg_version: str | None) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [
        line.split(":", 1)[1].strip()
        for line in cpuinfo.splitlines()
        if line.startswith("model name")
    ]
    memory = ""
    if Path("/proc/meminfo").exists():
        total = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        memory = f"{int(total) / 1024 / 1024:.1f} GiB"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    libraries = ", ".join(
        f"{name} {metadata.version(name)}" for name in LIBRARIES if _installed(name)
    )
    return [
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {models[0] if models else platform.processor() or 'unknown'}, "
        f"{cpus} CPUs available (`nproc`)",
        f"- Memory: {memory}",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"SQLite {sqlite3.sqlite_version}, "
        + (f"PostgreSQL {pg_version} (local, loopback TCP)" if pg_version else "no PostgreSQL"),
        f"- Libraries: {libraries}",
    ]


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def mark(ok: bool) -> str:
    return "✅ pass" if ok else "❌ FAIL"


def write_readme(
    section: str, markers: tuple[str, str] = (START, END), heading: str = "Results"
) -> None:
    """Replace what stands between a benchmark's markers in bench/README.md (or add it, under
    `heading`, the first time)."""
    start, end = markers
    readme = README.read_text(encoding="utf-8")
    if start in readme and end in readme:
        head, rest = readme.split(start, 1)
        _, tail = rest.split(end, 1)
        readme = f"{head}{start}\n{section}\n{end}{tail}"
    else:
        readme = f"{readme.rstrip()}\n\n## {heading}\n\n{start}\n{section}\n{end}\n"
    README.write_text(readme, encoding="utf-8")
