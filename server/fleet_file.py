"""`POST /fleet-plan.csv`: a Supplier's fleet file in, a CSV of plans out, streamed both ways.

A Large Supplier's fleet is millions of rows, so the file is never held whole: the body is
read as it arrives, cut into complete CSV records, planned in batches by the very planner
`fleetPlan` uses (`resolvers.planning.fleet_plan.plan_fleet`, over the CPL snapshot of the data
revision), and each batch's answer is sent before the next is read. Memory is one batch
(at most 50,000 rows and `CPL_FLEET_BATCH_BYTES` of their text), whatever the file's size.

Only the header can fail the request (HTTP 400 naming what is missing), because it is read
before the answer starts. After that every input row gets exactly one output row, in order:
the input's own cells as they came (but a cell a spreadsheet would run as a formula, which goes
back behind a `'`: `resolvers.files.cpl_files.escape_cell`), then `problem,reachable,reason,
target_version,step_count,path`. A row that cannot be planned has a `problem`; rows past
`CPL_MAX_FLEET_ROWS` are answered with a problem and not planned. With `?summary=true` the
answer is instead one line per outcome (`server.fleet_summary`), sent once every row is planned.

This is a plain ASGI app rather than a Starlette StreamingResponse: that one reads `receive`
itself to watch for a disconnect, which would take the request body from under the reader.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import operator
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Receive, Scope, Send

from models.database import RequestSession
from permissions.auth_errors import AuthenticationError
from permissions.policy import capability
from permissions.tokens import bearer_token
from resolvers.files.cpl_files import escape_cell
from resolvers.planning.collector import collector_paused
from resolvers.planning.fleet_items import FleetItem
from resolvers.planning.fleet_plan import MAX_FLEET_ITEMS, FleetResult, plan_fleet
from resolvers.planning.fleet_premises import FleetPremises, plan_fleet_premises
from resolvers.planning.planner import PathwayGraph, Plan
from schema.context import Services
from schema.ids import decode_id
from server.fleet_premises import count_premises, premises_answer, premises_item
from server.fleet_records import (
    ANSWER_COLUMNS,
    NOT_UTF8,
    TOO_LONG,
    Columns,
    HeaderProblem,
    Records,
    request_body,
)
from server.fleet_summary import Tally, wants_summary
from server.http_errors import bad_request, error_response, not_authenticated, over_budget

logger = logging.getLogger("cpl_pathways.fleet_csv")

BATCH_ROWS = MAX_FLEET_ITEMS  # rows a plan_fleet call: their distinct items are no more
# The planner speaks GraphQL's names; a file's reader knows its columns.
_COLUMN_NAMES = {
    "deviceId": "device_id",
    "manufacturerIdentifier": "manufacturer_identifier",
    "modelIdentifier": "model_identifier",
    "hardwareVersion": "hardware_version",
    "firmwareVersion": "firmware_version",
    "meterCount": "meter_count",
}
BAD_METER_COUNT = "meter_count must be a whole number"
BAD_CSV = "the row is not valid CSV; its cells could not be read"
TOO_LONG_PROBLEM = "the row is over 1,000,000 characters; it was not read"
NOT_UTF8_PROBLEM = "the row is not UTF-8 text; its cells could not be read"
# A cell, quoted or not, that starts as a formula would in a spreadsheet (`escape_cell`'s rule):
# rows with none (nearly all) go back as their own text, the others cell by cell.
FORMULA_CELL = re.compile(r"""(?:^|,)"?[=+\-@\t\r]""")


class FleetPlanCsv:
    """The ASGI app behind `POST /fleet-plan.csv`."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            token = bearer_token(headers.get("authorization"))
            principal = await self.services.verifier.verify(token)
        except AuthenticationError as error:
            await not_authenticated(error, "fleet file")(scope, receive, send)
            return
        refusal = over_budget(self.services.rate_limit, principal)  # a file is one operation
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "text/csv":
            response = error_response(
                "Send the fleet as Content-Type: text/csv.", "BAD_REQUEST", 415
            )
            await response(scope, receive, send)
            return
        body = request_body(receive)
        # A byte that is not UTF-8 spoils its own row, wherever it is (`fleet_records.NOT_UTF8`).
        decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
        records = Records()
        try:
            columns, first = await self._header(body, decoder, records)
        except HeaderProblem as problem:
            await bad_request(f"Cannot plan this fleet file: {problem}.", 400)(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/csv; charset=utf-8")],
            }
        )
        db = RequestSession(self.services.db_sessions)
        try:
            granted = capability(principal.party_category)
            planner = _Batcher(columns, db, self.services, granted, send)
            if wants_summary(scope.get("query_string", b"")):
                planner.tally = Tally()
            await planner.start()
            await planner.rows(first)
            async for chunk in body:
                await planner.rows(records.feed(decoder.decode(chunk)))
            await planner.rows(records.feed(decoder.decode(b"", final=True), final=True))
            await planner.flush()
            await planner.finish()
        finally:
            await db.close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _header(
        self, body: AsyncIterator[bytes], decoder: Any, records: Records
    ) -> tuple[Columns, list[str]]:
        """Read until the header record is complete; returns it parsed and the records after."""
        found: list[str] = []
        async for chunk in body:
            found = records.feed(decoder.decode(chunk))
            if found:
                break
        else:
            found = records.feed(decoder.decode(b"", final=True), final=True)
        while found and found[0] is not TOO_LONG and found[0] is not NOT_UTF8:
            if found[0].strip():
                break
            found.pop(0)
        if not found:
            raise HeaderProblem("the file is empty; it needs a header row")
        if found[0] is TOO_LONG:
            raise HeaderProblem("the header is over 1,000,000 characters")
        if found[0] is NOT_UTF8:
            raise HeaderProblem("the header is not UTF-8 text")
        try:
            header = next(csv.reader([found[0].removesuffix("\r")]))
        except csv.Error:
            raise HeaderProblem("the header is not valid CSV") from None
        return Columns(header), found[1:]


class _Batcher:
    """Collects rows into batches, plans each with `plan_fleet` and sends its answer.

    A fleet file has a row per meter, so most rows repeat another's device and firmware: each
    batch plans its distinct (device, firmware, meter count) items once and answers every row
    by reference. A row is answered as its own text followed by the answer's cells, so the
    input's cells go back as they came (would-be formulas escaped)."""

    def __init__(
        self,
        columns: Columns,
        db: RequestSession,
        services: Services,
        granted: tuple[str, ...],
        send: Send,
    ):
        self.columns = columns
        self.db = db
        self.services = services
        self.granted = granted  # the caller's capability: plans read its view of the CPL
        self.send = send
        self.limit = services.settings.max_fleet_rows
        self.budget = services.settings.fleet_batch_bytes  # of rows' text a batch holds
        self.seen = 0
        self._problems: dict[str, str] = {}
        self.tally: Tally | None = None  # the summary's, when asked for instead of the rows
        self._new_batch()

    def _new_batch(self) -> None:
        self.texts: list[str] = []  # each row's output up to its answer
        self.refs: list[int] = []  # each row's item, an index into self.items
        self.items: list[FleetItem | FleetPremises | str] = []  # a str: the problem found here
        self.distinct: dict[tuple[str, ...], int] = {}
        self.held = 0  # characters of text: bytes, for the ASCII a fleet file is

    async def start(self) -> None:
        if self.tally is None:
            await self._send(_csv_line([*self.columns.header, *ANSWER_COLUMNS]))

    async def finish(self) -> None:
        if self.tally is not None:
            await self._send("".join(_csv_line(line) for line in self.tally.lines()))

    async def rows(self, records: list[str]) -> None:
        """Take complete records; plans and sends a batch each time one fills up, so a batch
        never holds more rows (and so distinct items) than one plan_fleet call takes, nor more
        than `CPL_FLEET_BATCH_BYTES` of their text (a row up to 1,000,000 characters long, a
        batch of them would otherwise hold gigabytes), unless one row alone is over it."""
        start = 0
        while start < len(records):
            room = BATCH_ROWS - len(self.refs)
            batch = records[start : start + room]
            with collector_paused():  # plain objects only, and no await inside
                taken = self._take(batch)
            start += taken
            if len(self.refs) >= BATCH_ROWS or taken < len(batch):
                await self.flush()

    def _take(self, records: list[str]) -> int:
        """Add records to the batch until it is full by bytes; how many it took."""
        columns, width = self.columns, self.columns.width
        key_of = operator.itemgetter(*columns.wanted)  # a tuple of those cells (C speed)
        texts, refs, items, distinct = self.texts, self.refs, self.items, self.distinct
        seen, limit, held, budget = self.seen, self.limit, self.held, self.budget
        taken = 0
        for record in records:
            if texts and held + len(record) > budget:
                break
            taken += 1
            problem = None
            if record is TOO_LONG:
                cells, problem = [""] * width, TOO_LONG_PROBLEM
            elif record is NOT_UTF8:
                cells, problem = [""] * width, NOT_UTF8_PROBLEM
            elif '"' not in record:
                record = record.removesuffix("\r")
                cells = record.split(",")
            else:
                record = record.removesuffix("\r")
                try:
                    cells = next(csv.reader([record]), [])
                except csv.Error:
                    cells, problem = [""] * width, BAD_CSV
            if len(cells) <= 1 and not "".join(cells).strip():
                continue  # a blank line is not a row
            seen += 1
            if problem is not None:
                record = "," * (width - 1)
            elif seen > limit:
                problem = (
                    f"over CPL_MAX_FLEET_ROWS ({limit:,} rows a file); "
                    "this row was not planned: split the fleet"
                )
            elif len(cells) != width:
                problem = f"the row has {len(cells)} cells and the header {width}"
                cells = (cells + [""] * width)[:width]
                record = _csv_line(cells)[:-1]
            elif FORMULA_CELL.search(record):
                record = _csv_line(cells)[:-1]  # goes back with its would-be formulas escaped
            texts.append(record)
            held += len(record)
            if problem is not None:
                refs.append(len(items))
                items.append(problem)
                continue
            key = key_of(cells)
            index = distinct.get(key)
            if index is None:
                index = distinct[key] = len(items)
                items.append(_item(columns, cells))
            refs.append(index)
        self.seen, self.held = seen, held
        return taken

    async def flush(self) -> None:
        if not self.refs:
            return
        planned = [(i, item) for i, item in enumerate(self.items) if isinstance(item, FleetItem)]
        shapes = [(i, item) for i, item in enumerate(self.items) if isinstance(item, FleetPremises)]
        result = None
        snapshot = (await self.services.snapshots.current()).view(self.granted)
        if planned:
            result = await plan_fleet(self.db, snapshot, [item for _, item in planned])
        by_premises, _ = await plan_fleet_premises(self.db, snapshot, [s for _, s in shapes])
        if self.tally is not None:
            self._count(planned, result)
            count_premises(self.tally, self.refs, shapes, by_premises)
            self._new_batch()
            return
        with collector_paused():
            suffixes = [
                _problem_cells(item) if isinstance(item, str) else "" for item in self.items
            ]
            if result is not None:
                answers: dict[int, str] = {}
                for (index, _), entry in zip(planned, result.entries, strict=True):
                    if entry.problem is not None:
                        suffixes[index] = _problem_cells(self._problem(entry.problem))
                        continue
                    answer = answers.get(id(entry.plan))
                    if answer is None:
                        cells = _answer(entry.plan, result, entry.device_id)  # type: ignore[arg-type]  # an entry with a plan names its device
                        answer = answers[id(entry.plan)] = _csv_line(["", "", *cells])
                    suffixes[index] = answer
            for (index, shape), found in zip(shapes, by_premises, strict=True):
                cells = premises_answer(found, shape, snapshot.firmware)
                suffixes[index] = _csv_line(["", *cells])
            rows = zip(self.texts, self.refs, strict=True)
            body = "".join([text + suffixes[ref] for text, ref in rows])
        self._new_batch()
        await self._send(body)

    def _count(self, planned: list[tuple[int, Any]], result: FleetResult | None) -> None:
        """Each row of the batch into the summary: its item's plan and meters."""
        assert self.tally is not None
        plans: dict[int, Plan | None] = {}
        if result is not None:
            plans = {index: e.plan for (index, _), e in zip(planned, result.entries, strict=True)}
        for ref in self.refs:
            item = self.items[ref]
            if not isinstance(item, FleetPremises):  # premises rows: `_count_premises`
                meters = item.meter_count if isinstance(item, FleetItem) else 0
                self.tally.add(plans.get(ref), meters)

    def _problem(self, problem: str) -> str:
        named = self._problems.get(problem)
        if named is None:
            named = problem
            for field, column in _COLUMN_NAMES.items():
                named = named.replace(field, column)
            self._problems[problem] = named
        return named

    async def _send(self, text: str) -> None:
        await self.send({"type": "http.response.body", "body": text.encode(), "more_body": True})


def _csv_line(cells: list[str]) -> str:
    """Cells as one CSV line, quoted where needed, would-be formulas escaped
    (`escape_cell`), ending in a line break."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow([escape_cell(cell) for cell in cells])
    return text.getvalue()


def _problem_cells(problem: str) -> str:
    """What follows a row that has a problem: the problem and five empty answer cells."""
    return _csv_line(["", problem, "", "", "", "", ""])


def _item(columns: Columns, cells: list[str]) -> FleetItem | FleetPremises | str:
    """The planner's item for a row (a premises shape for a row of `premises`: see
    `server.fleet_premises`), or the row's problem when it has no item at all."""
    shape = premises_item(columns, cells)
    if shape is not None:
        return shape
    assert columns.version is not None  # premises_item says when there is no item
    meter_count = 1
    if columns.meters is not None:
        given = cells[columns.meters].strip()
        if given:
            try:
                meter_count = int(given)
            except ValueError:
                return BAD_METER_COUNT
    device_id = bad_id = None
    if columns.device_id is not None:
        given = cells[columns.device_id].strip()
        if given:
            device_id = decode_id("device", given)
            bad_id = device_id is None
    parts = [cells[i].strip() or None if i is not None else None for i in columns.keys]
    return FleetItem(
        device_id=device_id,
        bad_device_id=bool(bad_id),
        manufacturer_identifier=parts[0],
        model_identifier=parts[1],
        hardware_version=parts[2],
        firmware_version=cells[columns.version],
        meter_count=meter_count,
    )


def _answer(plan: Plan, result: FleetResult, device_id: int) -> list[str]:
    """`reachable,reason,target_version,step_count,path` of a plan (its problem is empty)."""
    target = plan.target.version if plan.target is not None else ""
    reason = plan.reason.value if plan.reason is not None else ""
    if not plan.reachable:
        return ["false", reason, target, "", ""]
    graph: PathwayGraph = result.graphs[device_id]
    start = plan.start.version if plan.start is not None else ""
    path = ">".join([start, *(graph.version_of(step.to_id) for step in plan.steps)])
    return ["true", reason, target, str(len(plan.steps)), path]
