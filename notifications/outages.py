"""What a background task that retries (the change listener, the webhook dispatcher) logs while
the database is away: one line when the failures begin and one when they end, however many
retries lie between. A retry a second for an hour is 3,600 lines that tell nothing the first
did not; the count is in the closing line instead."""

from __future__ import annotations

import logging

from models.database import describe_outage, is_outage


class OutageLog:
    """The failures of one task, logged once per run of them."""

    def __init__(self, logger: logging.Logger, task: str) -> None:
        self._logger = logger
        self._task = task
        self.failures = 0  # in a row, since the last success

    def failed(self, error: BaseException) -> None:
        """The first failure of a run: a WARNING line for an outage, the traceback for anything
        else (a bug, worth its stack once). Later ones are counted, not logged: while the
        database is away every failure is part of it."""
        self.failures += 1
        if self.failures > 1:
            return
        if is_outage(error):
            self._logger.warning(
                "%s: database unavailable (%s); retrying", self._task, describe_outage(error)
            )
        else:
            self._logger.exception("%s failed; retrying", self._task)

    def succeeded(self) -> None:
        """The run of failures, if any, is over: one INFO line saying how long it was."""
        if self.failures:
            self._logger.info(
                "%s: working again after %d failed attempt(s)", self._task, self.failures
            )
            self.failures = 0
