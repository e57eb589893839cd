"""`PUT /fleet`: a Supplier's fleet file (the columns `POST /fleet-plan.csv` takes, as CSV or
XLSX) stored as its fleet, all or nothing.

The file is read by the fleet file's own reader (`server.fleet_records.Columns` for the header,
`Records` for CSV records, `server.fleet_file`'s row to item, premises rows and all), and its
items and premises shapes are checked by the planner `replaceFleet` uses
(`resolvers.planning.stored_fleet`). Unlike the fleet file,
the body is not streamed: it is bounded by `CPL_MAX_BODY_BYTES` like any other request (413
past it), and its rows by `CPL_MAX_FLEET_ROWS`. Answers:

- 200 with the stored fleet's summary (its meters and outcomes counting the premises' devices
  as `fleetPlan` counts them, and `premises`, how many premises);
- 400 with the problems by row (the first `MAX_PROBLEMS`, and how many in all), nothing stored;
- 401 without a valid token, 403 for a caller that is not a Supplier (before any of the body is
  read), 415 for a body that is neither CSV nor XLSX, 429 over the Party's budget.

A row is numbered as a spreadsheet shows it: the header is row 1. The fleet's contents are
never logged.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from models.database import RequestSession
from permissions.auth_errors import AuthenticationError
from permissions.policy import allows, capability
from permissions.principal import Principal
from permissions.row_scopes import row_scope
from permissions.tokens import bearer_token
from resolvers.files.cpl_files import FileProblem, xlsx_lines
from resolvers.planning.fleet_items import FleetItem
from resolvers.planning.fleet_premises import FleetPremises
from resolvers.planning.stored_fleet import (
    MAX_FLEET_GROUPS,
    FleetRejected,
    replace_fleet,
    too_many,
)
from resolvers.planning.stored_fleet import group_items as check_groups
from resolvers.writes.unit_of_work import Work
from schema.context import Services
from server.fleet_file import _COLUMN_NAMES, BAD_CSV, TOO_LONG_PROBLEM, _item
from server.fleet_records import TOO_LONG, Columns, HeaderProblem, Records, request_body
from server.http_errors import error_response, not_authenticated, over_budget

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_PROBLEMS = 1_000  # problems an answer lists; `problemCount` says how many in all
BAD_METER_COUNT = "meter_count must be at least 1"
_Row = tuple[int, FleetItem | FleetPremises | str]  # a row's number, and its item or problem


class FileRefused(Exception):
    """The file as a whole cannot be stored: answered 400 with this message."""


class FleetUpload:
    """The ASGI app behind `PUT /fleet`."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._answer(scope, receive)
        await response(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive) -> JSONResponse:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            principal = await self.services.verifier.verify(
                bearer_token(headers.get("authorization"))
            )
        except AuthenticationError as error:
            return not_authenticated(error, "fleet upload")
        if not allows(principal, "Mutation", "replaceFleet"):
            return error_response(
                "Forbidden: a stored fleet is a Supplier's own, replaced by it only.",
                "FORBIDDEN",
                403,
            )
        refusal = over_budget(self.services.rate_limit, principal)
        if refusal is not None:
            return refusal
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in (CSV, XLSX):
            return error_response(
                f"Send the fleet as Content-Type: {CSV} or {XLSX}.", "BAD_REQUEST", 415
            )
        body = b"".join([chunk async for chunk in request_body(receive)])
        limit = self.services.settings.max_fleet_rows
        try:
            read = _csv_rows if media_type == CSV else _xlsx_rows
            # Parsing and summing rows is a second of CPU for a large file: not in the loop.
            fleet = await asyncio.to_thread(lambda: _distinct(read(body), limit))
            return await self._store(principal, fleet)
        except (FileRefused, HeaderProblem, FileProblem) as problem:
            return error_response(f"Cannot store this fleet file: {problem}.", "BAD_REQUEST", 400)
        except _Rejected as rejected:
            return rejected.response()

    async def _store(self, principal: Principal, fleet: _Fleet) -> JSONResponse:
        """Check the items as `replaceFleet` does, then store them in one unit of work;
        nothing on any problem."""
        problems = fleet.problems
        db = RequestSession(self.services.db_sessions)
        try:
            granted = capability(principal.party_category)
            snapshot = (await self.services.snapshots.current()).view(granted)
            groups, shapes, summary = await check_groups(db, snapshot, fleet.items, fleet.shapes)
        except FleetRejected as rejection:
            for index, problem in rejection.problems:
                problems.extend((number, _named(problem)) for number in fleet.numbers[index])
            for index, problem in rejection.premises_problems:
                problems.append((fleet.shape_numbers[index], _named(problem)))
            if not problems:
                raise FileRefused(rejection.message.rstrip(".")) from None
        finally:
            await db.close()
        if problems:
            raise _Rejected(sorted(problems))

        async def write(work: Work) -> Any:
            return await replace_fleet(work, groups, shapes)

        scope = row_scope(principal, "Mutation", "replaceFleet")
        stored = await self.services.writes.run(principal, scope, write, cpl=False)
        return JSONResponse(
            {
                "replacedAt": stored.fleet.replaced_at.isoformat(),
                "rows": fleet.rows,
                "groups": len(groups),
                "premisesShapes": len(shapes),
                "premises": summary.premises,
                "meters": summary.meters,
                "upToDate": summary.up_to_date,
                "upgradable": summary.upgradable,
                "blocked": summary.blocked,
            }
        )


@dataclasses.dataclass
class _Fleet:
    """A file's distinct items (rows equal but for their meters are one item, its meters
    summed), the rows of each, its premises shapes (a row each) and their rows, the rows' own
    problems, and how many rows it has."""

    items: list[FleetItem]
    numbers: list[list[int]]
    problems: list[tuple[int, str]]
    rows: int
    shapes: list[FleetPremises] = dataclasses.field(default_factory=list)
    shape_numbers: list[int] = dataclasses.field(default_factory=list)


def _distinct(rows: Iterable[_Row], limit: int) -> _Fleet:
    keys: dict[FleetItem, int] = {}  # an item but its meters -> its index
    meters: list[int] = []
    numbers: list[list[int]] = []
    problems: list[tuple[int, str]] = []
    shapes: list[FleetPremises] = []
    shape_numbers: list[int] = []
    devices = 0  # of the premises shapes: they count towards MAX_FLEET_GROUPS with the items
    count = 0
    for number, item in rows:
        count += 1
        if count > limit:
            raise FileRefused(f"it has over CPL_MAX_FLEET_ROWS ({limit:,}) rows")
        if isinstance(item, str):
            problems.append((number, item))
            continue
        if isinstance(item, FleetPremises):
            devices += len(item.devices)
            if len(keys) + devices > MAX_FLEET_GROUPS:
                raise FileRefused(too_many(len(keys) + devices).message.rstrip("."))
            shapes.append(item)
            shape_numbers.append(number)
            continue
        if item.meter_count < 1:
            problems.append((number, BAD_METER_COUNT))
            continue
        index = keys.setdefault(dataclasses.replace(item, meter_count=0), len(keys))
        if index == len(meters):
            if index + 1 + devices > MAX_FLEET_GROUPS:
                raise FileRefused(too_many(index + 1 + devices).message.rstrip("."))
            meters.append(0)
            numbers.append([])
        meters[index] += item.meter_count
        numbers[index].append(number)
    items = [dataclasses.replace(key, meter_count=meters[i]) for key, i in keys.items()]
    return _Fleet(items, numbers, problems, count, shapes, shape_numbers)


class _Rejected(Exception):
    """Rows with problems: answered 400, listing them by row."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems

    def response(self) -> JSONResponse:
        count = len(self.problems)
        listed = [{"row": row, "problem": problem} for row, problem in self.problems]
        body = {
            "errors": [
                {
                    "message": f"Cannot store this fleet file: {count:,} row"
                    f"{'s' if count > 1 else ''} with problems; nothing was stored.",
                    "extensions": {
                        "code": "BAD_REQUEST",
                        "problemCount": count,
                        "problems": listed[:MAX_PROBLEMS],
                    },
                }
            ]
        }
        return JSONResponse(body, status_code=400)


def _named(problem: str) -> str:
    """A planner's problem in the file's words: its columns, not GraphQL's fields."""
    for field, column in _COLUMN_NAMES.items():
        problem = problem.replace(field, column)
    return problem.replace("premisesCount", "premises_count")


def _csv_rows(body: bytes) -> Iterator[_Row]:  # in a worker thread
    """(row number, item or problem) of each non-blank row of a CSV fleet file."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRefused("it is not UTF-8 text") from None
    records = Records().feed(text, final=True)
    return _rows(_cells(records))


def _cells(records: list[str]) -> Iterator[list[str] | str]:
    """Each record's cells, or the problem of one that cannot be read (as the fleet file's)."""
    for record in records:
        if record is TOO_LONG:
            yield TOO_LONG_PROBLEM
            continue
        try:
            yield next(csv.reader([record.removesuffix("\r")]), [])
        except csv.Error:
            yield BAD_CSV


def _rows(lines: Iterable[list[str] | str]) -> Iterator[_Row]:
    """Items (or problems) of the lines after the header, with their row numbers."""
    columns: Columns | None = None
    for number, cells in enumerate(lines, start=1):
        if isinstance(cells, str):
            if columns is None:
                raise HeaderProblem(f"the header cannot be read ({cells})")
            yield number, cells
            continue
        if not "".join(cells).strip():
            continue  # a blank line is not a row
        if columns is None:
            columns = Columns(cells)
            continue
        if len(cells) != columns.width:
            yield number, f"the row has {len(cells)} cells and the header {columns.width}"
            continue
        yield number, _item(columns, cells)
    if columns is None:
        raise HeaderProblem("the file is empty; it needs a header row")


def _xlsx_rows(body: bytes) -> list[_Row]:  # in a worker thread
    """(row number, item or problem) of each non-blank row of the workbook's first sheet, read
    within the CPL import's bounds on a workbook (`resolvers.files.cpl_files`)."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fleet.xlsx"
        path.write_bytes(body)
        return list(_rows(_trimmed(xlsx_lines(path))))


def _trimmed(lines: Iterator[list[str]]) -> Iterator[list[str]]:
    """A sheet's rows as wide as its header (a sheet's rows are all `XLSX_MAX_COLUMNS` wide);
    a row with a cell past the header keeps it, and so has the wrong width."""
    width: int | None = None
    for cells in lines:
        if width is None:
            if not "".join(cells).strip():
                yield cells
                continue
            width = max(i for i, cell in enumerate(cells) if cell.strip()) + 1
        used = max((i + 1 for i, cell in enumerate(cells) if cell.strip()), default=0)
        yield cells[: max(width, used)]
