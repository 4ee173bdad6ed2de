"""The scheduler behind ``camcount worker`` and ``camcount jobs run``.

Every job has a fixed interval; its *slot* is the start of the current interval (counted from
:data:`~camcount.jobs.registry.SLOT_EPOCH`). A worker wakes at the next slot boundary (or after at
most ``max_sleep`` seconds), and for each job whose current slot has no run yet it takes the job's
advisory lock and claims the slot in ``control.job_runs`` (``INSERT ... ON CONFLICT DO NOTHING``).
Two or more workers may run at once: whichever claims first runs the job, the others skip it, so
each job runs once per slot. A worker that was down misses slots; it runs the current one only.

SIGTERM or SIGINT sets the stop event: the job in progress finishes and is recorded, then the
worker exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from camcount.db.pools import Database
from camcount.jobs import ledger
from camcount.jobs.ledger import JobRun
from camcount.jobs.registry import Clock, Job, JobContext, JobFailed, load_jobs, system_clock
from camcount.monitoring import metrics
from camcount.monitoring.logs import log_context, redact

logger = logging.getLogger("camcount.jobs")


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _json_safe(details: dict[str, Any]) -> dict[str, Any]:
    safe: dict[str, Any] = json.loads(json.dumps(details, default=str))
    return safe


async def execute(
    db: Database,
    job: Job,
    *,
    now: datetime,
    worker: str,
    manual: bool = False,
) -> JobRun | None:
    """Run ``job`` for ``now`` and record it. A scheduled run returns None when its slot is taken
    or the job is running elsewhere; a manual run waits for a running one and always runs."""
    slot = now if manual else job.slot_for(now)
    async with db.owner() as conn:
        await conn.set_autocommit(True)
        if manual:
            await ledger.lock(conn, job.name)
        elif not await ledger.try_lock(conn, job.name):
            return None
        try:
            await ledger.mark_abandoned(conn, job.name)
            run_id = await ledger.claim(conn, job.name, slot, worker=worker, manual=manual)
            if run_id is None:
                return None
            return await _run_claimed(conn, db, job, run_id, now=now, slot=slot)
        finally:
            await ledger.unlock(conn, job.name)


async def _run_claimed(
    conn: AsyncConnection, db: Database, job: Job, run_id: int, *, now: datetime, slot: datetime
) -> JobRun:
    with log_context(job=job.name, run_id=run_id):
        started = time.monotonic()
        error: str | None = None
        try:
            details = _json_safe(await job.run(JobContext(db, now, slot)))
            status = "succeeded"
        except JobFailed as exc:
            logger.error("job did part of its work: %s", exc)
            details, status, error = _json_safe(exc.details), "failed", redact(str(exc))[:2000]
        except Exception as exc:
            logger.exception("job failed")
            details, status = {}, "failed"
            error = redact(f"{type(exc).__name__}: {exc}".strip())[:2000]
        run = await ledger.finish(conn, run_id, status=status, details=details, error=error)
        duration = time.monotonic() - started
        metrics.observe_job(job.name, status, duration)
        logger.log(
            logging.INFO if status == "succeeded" else logging.ERROR,
            "job %s",
            status,
            extra={"status": status, "duration_ms": round(duration * 1000, 1), "slot": slot.isoformat(),
                   "details": details, "error": error},
        )  # fmt: skip
        return run


class Scheduler:
    """Runs the due jobs; many instances (processes, hosts) may share one database safely."""

    def __init__(
        self,
        db: Database,
        jobs: Sequence[Job] | None = None,
        *,
        clock: Clock = system_clock,
        worker: str | None = None,
    ) -> None:
        self.db = db
        self.jobs = list(jobs) if jobs is not None else load_jobs()
        self.clock = clock
        self.worker = worker or worker_name()

    async def run_due(
        self, now: datetime | None = None, *, stop: asyncio.Event | None = None
    ) -> list[JobRun]:
        """Run every job whose current slot has no run yet; returns the runs this worker did."""
        now = now or self.clock()
        async with self.db.owner() as conn:
            taken = await ledger.claimed_slots(
                conn, [j.name for j in self.jobs], sorted({j.slot_for(now) for j in self.jobs})
            )
        runs = []
        for job in self.jobs:
            if stop is not None and stop.is_set():
                break
            if (job.name, job.slot_for(now)) in taken:
                continue
            run = await execute(self.db, job, now=now, worker=self.worker)
            if run is not None:
                runs.append(run)
        return runs

    def seconds_until_next_slot(self, now: datetime) -> float:
        if not self.jobs:
            return float("inf")
        return min((job.next_slot(now) - now).total_seconds() for job in self.jobs)

    async def run_forever(self, stop: asyncio.Event, *, max_sleep: float = 60.0) -> None:
        """Until ``stop`` is set: run what is due, then sleep until the next slot (at most max_sleep)."""
        logger.info("worker started", extra={"worker": self.worker, "jobs": [j.name for j in self.jobs]})
        while not stop.is_set():
            try:
                await self.run_due(stop=stop)
            except Exception:
                # The database may be briefly unreachable; try again at the next wake-up.
                logger.exception("scheduler pass failed")
            delay = min(max_sleep, max(0.5, self.seconds_until_next_slot(self.clock()) + 0.05))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        logger.info("worker stopped", extra={"worker": self.worker})
