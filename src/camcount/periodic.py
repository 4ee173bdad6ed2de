"""Work an API process does in the background now and then, instead of in a request.

Hints and tallies noted in memory on the hot path (a credential's last use, ingestion counters)
are written every ``flush_seconds`` by a task of the process, and once more when it stops, so no
request waits for a control-plane write and a clean shutdown loses none of them.
"""

from __future__ import annotations

import asyncio
import contextlib

from camcount.db.pools import Database


class PeriodicFlush:
    """Calls ``flush`` every ``flush_seconds`` from ``start`` on, and once more at ``stop``.

    ``flush`` must not raise: a failure is its own to log (and to keep for the next time, where
    the data matters), or the periodic task would end with it.
    """

    def __init__(self, db: Database, flush_seconds: float) -> None:
        self.db = db
        self.flush_seconds = flush_seconds
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> int:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"camcount-{type(self).__name__}")

    async def stop(self) -> None:
        """Stop the periodic writes and write what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()
