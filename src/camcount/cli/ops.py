"""Operations commands: ``camcount worker``, ``camcount jobs ...``, ``camcount health`` and
``camcount tenant metrics``. They call camcount.jobs and camcount.monitoring; no logic here."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from typing import Annotated

import typer

from camcount.cli.common import console, fail, guard, print_json, print_table, run
from camcount.db.pools import Database
from camcount.jobs.ledger import JobRun, list_runs
from camcount.jobs.registry import Job, get_job, load_jobs
from camcount.jobs.scheduler import Scheduler, execute, worker_name
from camcount.monitoring.health import HealthStatus, TenantHealth, check_all
from camcount.monitoring.logs import configure_logging
from camcount.monitoring.tenant_metrics import TenantMetrics, tenant_metrics
from camcount.tenancy.lifecycle import list_tenants, require_tenant

jobs_app = typer.Typer(help="Periodic jobs: run one now, list recent runs.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
EXIT_JOB_FAILED = 1
RUN_STATUSES = ("running", "succeeded", "failed", "abandoned")


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run the jobs that are due now, then exit.")] = False,
    job: Annotated[list[str] | None, typer.Option("--job", help="Only this job (repeatable).")] = None,
    max_sleep: Annotated[
        float, typer.Option(min=1, max=3600, help="Longest sleep between checks, seconds.")
    ] = 60,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve this worker's job metrics on 127.0.0.1:PORT.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run the periodic jobs (partitions, retention, health, usage, billing) until SIGTERM or SIGINT.

    Safe to run on several hosts at once: each job runs once per slot. The job in progress
    finishes before the worker exits."""
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        fail(f"log level {log_level[:20]!r} is not one of DEBUG, INFO, WARNING, ERROR")
    configure_logging(log_level.upper())
    jobs = [run_guarded_job(name) for name in job] if job else None
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from camcount.monitoring.metrics import REGISTRY

        start_http_server(metrics_port, addr="127.0.0.1", registry=REGISTRY)

    async def action(db: Database) -> list[JobRun]:
        scheduler = Scheduler(db, jobs, worker=worker_name())
        if once:
            return await scheduler.run_due()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await scheduler.run_forever(stop, max_sleep=max_sleep)
        return []

    runs = run(action)
    if once:
        _print_runs(runs, as_json=False, title="runs of this worker")


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="The job's name (see `camcount jobs names`).")],
    as_json: JsonOption = False,
) -> None:
    """Run a job now (waits if it is running elsewhere) and record the run."""
    configure_logging("WARNING")
    with_job = run_guarded_job(name)

    async def action(db: Database) -> JobRun | None:
        return await execute(db, with_job, now=datetime.now(UTC), worker=worker_name(), manual=True)

    result = run(action)
    assert result is not None  # a manual run always runs
    if as_json:
        print_json(result.as_dict())
    else:
        console.print(
            f"{result.job}: {result.status} in {result.duration_seconds or 0:.2f}s", highlight=False
        )
        print_json(result.details)
        if result.error:
            console.print(f"error: {result.error}", highlight=False)
    if result.status != "succeeded":
        raise typer.Exit(EXIT_JOB_FAILED)


@jobs_app.command("list")
def jobs_list(
    job: Annotated[str | None, typer.Option(help="Only runs of this job.")] = None,
    status: Annotated[str | None, typer.Option(help="running, succeeded, failed or abandoned.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many runs, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Recent runs with their slot, duration, outcome and what they did."""
    if status is not None and status not in RUN_STATUSES:
        fail(f"status {status[:20]!r} is not one of {', '.join(RUN_STATUSES)}")
    if job is not None:
        run_guarded_job(job)  # an unknown name is an error, not an empty list
    runs = run(lambda db: list_runs(db, job=job, status=status, limit=limit))
    _print_runs(runs, as_json=as_json, title="job runs, newest first")


@jobs_app.command("names")
def jobs_names(as_json: JsonOption = False) -> None:
    """The registered jobs and how often they run."""
    jobs = load_jobs()
    if as_json:
        print_json([{"name": j.name, "every_seconds": j.every.total_seconds(), "description": j.description}
                    for j in jobs])  # fmt: skip
        return
    print_table(
        "jobs", ("name", "every", "description"), ((j.name, str(j.every), j.description) for j in jobs)
    )


def run_guarded_job(name: str) -> Job:
    with guard():
        return get_job(name)
    raise AssertionError("unreachable")


def _print_runs(runs: list[JobRun], *, as_json: bool, title: str) -> None:
    if as_json:
        print_json([r.as_dict() for r in runs])
        return
    rows = (
        (r.job, r.trigger, r.slot.isoformat(timespec="minutes"), r.started_at.isoformat(timespec="seconds"),
         f"{r.duration_seconds:.2f}s" if r.duration_seconds is not None else "", r.status,
         _summary(r))
        for r in runs
    )  # fmt: skip
    print_table(title, ("job", "trigger", "slot", "started", "duration", "status", "details"), rows)


def _summary(run_: JobRun) -> str:
    if run_.error:
        return run_.error[:120]
    parts = [f"{k}={v}" for k, v in run_.details.items() if isinstance(v, int | float | str)]
    return ", ".join(parts)[:120]


def health(
    status: Annotated[
        str | None, typer.Option(help="Only tenants with this health: HEALTHY, WARNING, CRITICAL.")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant (slug).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every tenant's health (HEALTHY, WARNING or CRITICAL) with the reason for each issue."""
    wanted = None
    if status is not None:
        if status.upper() not in HealthStatus.__members__:
            fail(f"status {status[:20]!r} is not one of HEALTHY, WARNING, CRITICAL")
        wanted = HealthStatus(status.upper())

    async def action(db: Database) -> list[TenantHealth]:
        now = datetime.now(UTC)
        if tenant is not None:
            from camcount.monitoring.health import check_tenant

            async with db.owner() as conn:
                found = await require_tenant(conn, tenant)
            return [await check_tenant(db, found, now=now)]
        return await check_all(db, now=now)

    results = [r for r in run(action) if wanted is None or r.status is wanted]
    if as_json:
        print_json([r.as_dict() for r in results])
        return
    rows: list[tuple[str, str, str, str]] = []
    for r in results:
        reasons = [f"[{i.severity}] {i.reason}" for i in r.issues] or [""]
        rows.append((r.tenant.slug, str(r.tenant.status), str(r.status), reasons[0]))
        rows.extend(("", "", "", reason) for reason in reasons[1:])
    print_table(
        f"tenant health ({len(results)} tenants)", ("tenant", "tenant status", "health", "reasons"), rows
    )


def metrics_command(
    slug: Annotated[str | None, typer.Argument(help="One tenant; all tenants when omitted.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Per-tenant metrics: cameras, sites, users, events, confidence, storage, ingestion errors."""

    async def action(db: Database) -> list[TenantMetrics]:
        async with db.owner() as conn:
            tenants = [await require_tenant(conn, slug)] if slug is not None else await list_tenants(conn)
        return await tenant_metrics(db, tenants, now=datetime.now(UTC))

    results = run(action)
    if as_json:
        data = [m.as_dict() for m in results]
        print_json(data[0] if slug is not None else data)
        return
    columns = ("tenant", "cameras", "sites", "users", "events 1h", "events 24h", "avg conf", "last event",
               "storage", "error rate")  # fmt: skip
    rows = []
    for m in results:
        rate = m.ingestion_error_rate
        rows.append((
            m.tenant.slug, m.cameras, m.sites, m.users, m.events_last_hour, m.events_last_day,
            "" if m.average_confidence is None else f"{m.average_confidence:.3f}",
            m.last_event_at.isoformat(timespec="seconds") if m.last_event_at else "",
            f"{m.storage_bytes / 1024**2:.2f} MiB" + (" (est.)" if m.storage_method == "estimate" else ""),
            "" if rate is None else f"{rate:.1%}",
        ))  # fmt: skip
    print_table("tenant metrics", columns, rows)
