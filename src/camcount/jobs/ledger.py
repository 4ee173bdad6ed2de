"""The run ledger ``control.job_runs``: claiming a slot, recording the outcome, listing runs.

Each job has a session-level advisory lock held for the whole run, on the connection that claims
and records it. So a job never runs twice at the same time (scheduled or manual, in any worker),
and a run left ``running`` whose lock is free belongs to a worker that died: it is marked
``abandoned`` the next time anyone looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from camcount.db.pools import Database

_LOCK_NAMESPACE = "camcount.job"


@dataclass(frozen=True)
class JobRun:
    id: int
    job: str
    slot: datetime
    trigger: str
    worker: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    details: dict[str, Any]
    error: str | None

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job": self.job,
            "slot": self.slot.isoformat(),
            "trigger": self.trigger,
            "worker": self.worker,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_seconds": self.duration_seconds,
            "status": self.status,
            "details": self.details,
            "error": self.error,
        }


_COLUMNS = "id, job, slot, trigger, worker, started_at, finished_at, status, details, error"


async def try_lock(conn: AsyncConnection, job: str) -> bool:
    """Take the job's session lock without waiting; False when someone is running the job."""
    cur = await conn.execute(
        "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", (_LOCK_NAMESPACE, job)
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def lock(conn: AsyncConnection, job: str) -> None:
    """Wait for the job's session lock (manual runs wait for a running scheduled run)."""
    await conn.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))", (_LOCK_NAMESPACE, job))


async def unlock(conn: AsyncConnection, job: str) -> None:
    await conn.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", (_LOCK_NAMESPACE, job))


async def mark_abandoned(conn: AsyncConnection, job: str) -> int:
    """Runs of ``job`` still marked running; call while holding the job's lock (so none is alive)."""
    cur = await conn.execute(
        """
        UPDATE control.job_runs SET status = 'abandoned', finished_at = clock_timestamp(),
               error = 'the worker stopped before the run finished'
        WHERE job = %s AND status = 'running'
        """,
        (job,),
    )
    return cur.rowcount


async def claim(
    conn: AsyncConnection, job: str, slot: datetime, *, worker: str, manual: bool = False
) -> int | None:
    """Record a run as started; for a scheduled run, None when the slot was already claimed."""
    cur = await conn.execute(
        """
        INSERT INTO control.job_runs (job, slot, trigger, worker) VALUES (%s, %s, %s, %s)
        ON CONFLICT (job, slot) WHERE trigger = 'schedule' DO NOTHING
        RETURNING id
        """,
        (job, slot, "manual" if manual else "schedule", worker),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else None


async def finish(
    conn: AsyncConnection, run_id: int, *, status: str, details: dict[str, Any], error: str | None = None
) -> JobRun:
    cur = await conn.execute(
        f"""
        UPDATE control.job_runs SET status = %s, details = %s, error = %s, finished_at = clock_timestamp()
        WHERE id = %s RETURNING {_COLUMNS}
        """,  # noqa: S608 (constant column list)
        (status, Jsonb(details), error, run_id),
    )
    row = await cur.fetchone()
    assert row is not None
    return JobRun(*row)


async def claimed_slots(
    conn: AsyncConnection, jobs: list[str], slots: list[datetime]
) -> set[tuple[str, datetime]]:
    """Which (job, slot) pairs already have a scheduled run."""
    cur = await conn.execute(
        "SELECT job, slot FROM control.job_runs WHERE trigger = 'schedule' AND job = ANY(%s) AND slot = ANY(%s)",
        (jobs, slots),
    )
    return {(job, slot) for job, slot in await cur.fetchall()}


async def list_runs(
    db: Database, *, job: str | None = None, status: str | None = None, limit: int = 50
) -> list[JobRun]:
    """The most recent runs first, optionally of one job or with one status."""
    query = f"SELECT {_COLUMNS} FROM control.job_runs WHERE true"  # noqa: S608 (constant column list)
    params: list[Any] = []
    if job is not None:
        query += " AND job = %s"
        params.append(job)
    if status is not None:
        query += " AND status = %s"
        params.append(status)
    query += " ORDER BY started_at DESC, id DESC LIMIT %s"
    params.append(limit)
    async with db.owner() as conn:
        cur = await conn.execute(query.encode(), params)
        return [JobRun(*row) for row in await cur.fetchall()]
