"""The scheduler: once per slot across concurrent workers, recorded runs, failures, manual runs."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from camcount.db.pools import Database
from camcount.jobs.ledger import list_runs
from camcount.jobs.registry import Job, JobContext, JobFailed, load_jobs
from camcount.jobs.scheduler import Scheduler, execute

T0 = datetime(2035, 1, 1, 0, 0, tzinfo=UTC)


def _recording_job(calls: list[tuple[str, datetime]], every: timedelta = timedelta(minutes=5)) -> Job:
    name = f"test-{uuid.uuid4().hex[:8]}"

    async def run(ctx: JobContext) -> dict[str, Any]:
        calls.append((name, ctx.slot))
        await asyncio.sleep(0)  # let the other worker interleave
        return {"slot": ctx.slot.isoformat()}

    return Job(name, every, run, "records its calls")


async def test_two_workers_started_together_run_each_job_once_per_slot(db: Database) -> None:
    calls: list[tuple[str, datetime]] = []
    jobs = [_recording_job(calls), _recording_job(calls), _recording_job(calls, timedelta(minutes=15))]
    first, second = Scheduler(db, jobs, worker="w1"), Scheduler(db, jobs, worker="w2")
    slots = [T0 + timedelta(minutes=m) for m in (0, 1, 5, 7, 10, 15)]
    for now in slots:
        await asyncio.gather(first.run_due(now), second.run_due(now), first.run_due(now))

    five = {T0 + timedelta(minutes=m) for m in (0, 5, 10, 15)}
    for job in jobs[:2]:
        assert sorted(slot for name, slot in calls if name == job.name) == sorted(five)
    assert sorted(slot for name, slot in calls if name == jobs[2].name) == [T0, T0 + timedelta(minutes=15)]
    runs = [r for j in jobs for r in await list_runs(db, job=j.name)]
    assert len(runs) == len(calls) == 10
    assert {r.status for r in runs} == {"succeeded"}
    assert all(r.duration_seconds is not None and r.duration_seconds >= 0 for r in runs)


async def test_a_failing_job_is_recorded_with_its_error_and_does_not_stop_the_others(db: Database) -> None:
    calls: list[tuple[str, datetime]] = []

    async def broken(ctx: JobContext) -> dict[str, Any]:
        raise RuntimeError("boom password=hunter2")

    async def partial(ctx: JobContext) -> dict[str, Any]:
        raise JobFailed("1 target failed", {"done": 3})

    bad = Job(f"test-bad-{uuid.uuid4().hex[:6]}", timedelta(hours=1), broken)
    half = Job(f"test-half-{uuid.uuid4().hex[:6]}", timedelta(hours=1), partial)
    good = _recording_job(calls, timedelta(hours=1))
    runs = await Scheduler(db, [bad, half, good]).run_due(T0)
    by_job = {r.job: r for r in runs}
    assert by_job[bad.name].status == "failed"
    assert by_job[bad.name].error is not None
    assert "boom" in by_job[bad.name].error
    assert "hunter2" not in by_job[bad.name].error
    assert (by_job[half.name].status, by_job[half.name].details) == ("failed", {"done": 3})
    assert by_job[good.name].status == "succeeded"


async def test_a_manual_run_always_runs_and_does_not_take_the_slot(db: Database) -> None:
    calls: list[tuple[str, datetime]] = []
    job = _recording_job(calls, timedelta(hours=1))
    manual = await execute(db, job, now=T0, worker="me", manual=True)
    assert manual is not None
    assert manual.trigger == "manual"
    scheduled = await Scheduler(db, [job]).run_due(T0)
    assert [r.trigger for r in scheduled] == ["schedule"]
    assert len(calls) == 2


async def test_a_run_left_running_by_a_dead_worker_is_marked_abandoned(db: Database) -> None:
    calls: list[tuple[str, datetime]] = []
    job = _recording_job(calls, timedelta(hours=1))
    async with db.owner() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO control.job_runs (job, slot, worker) VALUES (%s, %s, 'dead')", (job.name, T0)
        )
    runs = await Scheduler(db, [job]).run_due(T0 + timedelta(hours=1))
    assert [r.status for r in runs] == ["succeeded"]
    statuses = {r.slot: r.status for r in await list_runs(db, job=job.name)}
    assert statuses == {T0: "abandoned", T0 + timedelta(hours=1): "succeeded"}


async def test_the_worker_sleeps_until_the_next_slot_and_stops_when_asked(db: Database) -> None:
    calls: list[tuple[str, datetime]] = []
    job = _recording_job(calls, timedelta(minutes=5))
    now = T0 + timedelta(minutes=3, seconds=30)
    scheduler = Scheduler(db, [job], clock=lambda: now)
    assert scheduler.seconds_until_next_slot(now) == 90
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(scheduler.run_forever(stop), timeout=10)  # returns at once
    assert calls == []


def test_the_built_in_jobs_are_registered() -> None:
    names = {j.name for j in load_jobs()}
    assert {"partitions", "retention", "health"} <= names


async def test_two_worker_processes_run_a_job_once(db: Database, env_for_cli: dict[str, str]) -> None:
    command = [str(Path(sys.executable).parent / "camcount"), "worker", "--once", "--job", "partitions"]
    env = env_for_cli
    before = {r.id for r in await list_runs(db, job="partitions", limit=1000)}
    processes = [
        await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [await asyncio.wait_for(p.communicate(), timeout=120) for p in processes]
    outputs = [(out.decode(), err.decode()) for out, err in results]
    assert [p.returncode for p in processes] == [0, 0], outputs
    new = [r for r in await list_runs(db, job="partitions", limit=1000) if r.id not in before]
    # The current hour's slot ran exactly once (unless the hour turned between the two starts).
    assert len(new) == len({r.slot for r in new}) >= 1
    assert all(r.status == "succeeded" for r in new)
    # The worker logs JSON lines with the job's name.
    lines = [json.loads(line) for out in outputs for line in out[1].splitlines() if line.startswith("{")]
    assert any(line.get("job") == "partitions" and line.get("status") == "succeeded" for line in lines)
