"""Shutdown steps that cannot hold a stopping process hostage.

At shutdown the API writes what it kept in memory (quota leases, ingestion counters, device-key
and operator-token uses) and closes the cache. When the database or Redis is the reason for the restart, every such
write would wait for a pooled connection until the pool's timeout (30 s each, measured: a
``camcount serve`` took 32 s to stop with PostgreSQL gone, and ended with a traceback). The steps
share one deadline instead; what a step could not write by then is lost, as it would be had the
process crashed, and says so in the log. Quotas stay safe either way: a lease never grants more
than the limit (see :mod:`camcount.limits.quotas`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("camcount.shutdown")

# Well inside the usual grace period of a process manager (Kubernetes: 30 s before SIGKILL).
SHUTDOWN_SECONDS = 10.0


class ShutdownSteps:
    """Wraps shutdown steps so that, together, they end within ``seconds`` of the first one."""

    def __init__(self, seconds: float = SHUTDOWN_SECONDS) -> None:
        self.seconds = seconds
        self._deadline: float | None = None

    def step(self, name: str, stop: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """``stop`` as a step: bounded by the shared deadline; a failure is logged, not raised,
        so the steps after it still run."""

        async def run() -> None:
            loop = asyncio.get_running_loop()
            if self._deadline is None:
                self._deadline = loop.time() + self.seconds
            try:
                async with asyncio.timeout_at(self._deadline):
                    await stop()
            except TimeoutError:
                log.warning("shutdown: gave up on %s after the %g s shutdown deadline", name, self.seconds)
            except Exception as error:  # the database or Redis gone; the next step must still run
                log.warning("shutdown: %s failed: %s: %s", name, type(error).__name__, error)

        return run
