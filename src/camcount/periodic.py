"""Work an API process does in the background now and then, instead of in a request.

Hints and tallies noted in memory on the hot path (a credential's last use, ingestion counters,
quota usage) are written every ``flush_seconds`` by a task of the process, and once more when it
stops, so no request waits for a control-plane write and a clean shutdown loses none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from camcount.db.pools import Database

log = logging.getLogger(__name__)


class PeriodicFlush:
    """Calls ``flush`` every ``flush_seconds`` from ``start`` on, and ``final_flush`` at ``stop``.

    A flush that raises is logged and the next period tries again: the task never ends with it.
    What a failed flush had to write is the subclass's to keep where it matters.
    """

    def __init__(self, db: Database, flush_seconds: float) -> None:
        self.db = db
        self.flush_seconds = flush_seconds
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> int:
        raise NotImplementedError

    async def final_flush(self) -> int:
        """What ``stop`` writes last; by default one more ``flush``."""
        return await self.flush()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"camcount-{type(self).__name__}")

    async def stop(self) -> None:
        """Stop the periodic writes and write what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.final_flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("%s: flush failed; the next one tries again", type(self).__name__)
