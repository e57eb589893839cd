"""Reading a fleet file as it arrives: its header's columns, and complete CSV records out of
text that comes in pieces, with no record ever held past `LONGEST_ROW` characters
(`server.fleet_file` plans them)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.types import Receive

ANSWER_COLUMNS = ("problem", "reachable", "reason", "target_version", "step_count", "path")
KEY_COLUMNS = ("manufacturer_identifier", "model_identifier", "hardware_version")


class HeaderProblem(Exception):
    """The file cannot be planned at all: its header is missing or lacks needed columns."""


class Columns:
    """Where the needed columns are in the file's header."""

    def __init__(self, header: list[str]) -> None:
        names = [name.strip().lower() for name in header]
        clash = [name for name in ANSWER_COLUMNS if name in names]
        if clash:
            raise HeaderProblem(
                f"the file has column(s) named like the answer's: {', '.join(clash)}"
            )
        missing = [] if "firmware_version" in names else ["firmware_version"]
        keys = [name for name in KEY_COLUMNS if name not in names]
        if "device_id" not in names and keys:
            missing.append(
                f"device_id or {', '.join(KEY_COLUMNS)}"
                if len(keys) == len(KEY_COLUMNS)
                else f"device_id or {', '.join(keys)}"
            )
        if missing and "premises" not in names:  # a file of premises needs no device columns
            raise HeaderProblem(f"missing column(s): {'; '.join(missing)}")
        self.header = header
        self.width = len(header)
        self.device_id = names.index("device_id") if "device_id" in names else None
        self.keys = [names.index(name) if name in names else None for name in KEY_COLUMNS]
        self.version = names.index("firmware_version") if not missing else None
        self.meters = names.index("meter_count") if "meter_count" in names else None
        # Fleets by premises (`server.fleet_premises`): a premises shape, and how many have it.
        self.premises = names.index("premises") if "premises" in names else None
        self.premises_count = names.index("premises_count") if "premises_count" in names else None
        needed = [self.device_id, *self.keys, self.version, self.meters]
        needed += [self.premises, self.premises_count]
        self.wanted = [i for i in needed if i is not None]
        """The cells an item is made of: rows equal in these are planned once."""


LONGEST_ROW = 1_000_000  # characters: a longer row is answered with a problem, never held
TOO_LONG = "<a row too long to read>"
"""Stands for such a row among the records (compared by identity, never by value)."""
NOT_UTF8 = "<a row that is not UTF-8 text>"
"""Stands for a record holding a byte that is not UTF-8 (compared by identity): the body is
decoded with `surrogateescape`, so such a byte is a lone surrogate, which valid UTF-8 never
decodes to, and it spoils its own row only, wherever in the file it is."""
_SURROGATE = re.compile("[\udc80-\udcff]")


class Records:
    """Complete CSV records out of text that arrives in pieces (decoded with
    `surrogateescape`: a record with a byte that is not UTF-8 stands as `NOT_UTF8`).

    A record ends at a line break outside quotes; a quoted field may hold line breaks, so a
    line with an odd number of quotes leaves its record open. Records go to `csv.reader`
    whole, which then never sees a record cut by a chunk boundary. A record that grows past
    `LONGEST_ROW` is dropped up to the next line break and stands as `TOO_LONG`, so a file
    without line breaks cannot make the server hold it whole."""

    def __init__(self) -> None:
        self._rest = ""
        self._skipping = False

    def feed(self, text: str, final: bool = False) -> list[str]:
        if self._skipping:
            end = text.find("\n")
            if end < 0:
                return []
            text, self._skipping = text[end + 1 :], False
        text = self._rest + text
        end = len(text) if final else text.rfind("\n")
        if end < 0:
            end = -1
        self._rest = text[end + 1 :] if end >= 0 else text
        complete = text[:end] if end >= 0 else ""
        records = complete.split("\n") if complete or end >= 0 else []
        if '"' in complete:
            records = self._join_quoted(records, final)
        if len(complete) > LONGEST_ROW:  # a whole long row may come in one piece too
            records = [TOO_LONG if len(r) > LONGEST_ROW else r for r in records]
        if _SURROGATE.search(complete):  # one search a piece; rows only when there is one
            records = [
                NOT_UTF8 if r is not TOO_LONG and _SURROGATE.search(r) else r for r in records
            ]
        if len(self._rest) > LONGEST_ROW:
            self._rest, self._skipping = "", True
            records.append(TOO_LONG)
        return records

    def _join_quoted(self, lines: list[str], final: bool) -> list[str]:
        records: list[str] = []
        pending: list[str] = []
        odd = False
        for line in lines:
            if line.count('"') % 2:
                odd = not odd
            pending.append(line)
            if not odd:
                records.append("\n".join(pending))
                pending = []
        if pending:
            self._rest = "\n".join(pending) + "\n" + self._rest
            if final:  # an unterminated quote: let the reader make what it can of it
                records.append(self._rest)
                self._rest = ""
        return records


async def request_body(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives, chunk by chunk, until its end or a disconnect."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
