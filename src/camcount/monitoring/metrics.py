"""Prometheus metrics (prometheus-client), in camcount's own registry.

Label choice: no metric carries a tenant label. The number of tenants is unbounded (thousands),
and a tenant label on request or ingestion series would multiply every series by it; Prometheus
advises against unbounded label values. Per-tenant numbers are served by
``/admin/tenants/{slug}/metrics`` and ``camcount tenant metrics`` instead. Labels used here are all
bounded: HTTP method, route *template* (never the raw path), status code, ingestion outcome, job
name, tenant status, plan, placement and health status, pool kind and server name.

Process-local series (requests, ingestion, job runs) are counters updated where things happen.
Series that describe the whole installation (tenants by status and health, the last run of each
job, pool usage) are gauges refreshed from the database when ``/metrics`` is scraped, so every
API replica reports the same values and the worker need not be scraped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from camcount.db.pools import Database

REGISTRY = CollectorRegistry(auto_describe=True)
UNMATCHED_ROUTE = "<unmatched>"

HTTP_REQUESTS = Counter(
    "camcount_http_requests", "HTTP requests handled, by route template and status.",
    ["method", "route", "status"], registry=REGISTRY,
)  # fmt: skip
HTTP_LATENCY = Histogram(
    "camcount_http_request_duration_seconds", "Time to answer an HTTP request, by route template and status.",
    ["method", "route", "status"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)  # fmt: skip
INGESTED_EVENTS = Counter(
    "camcount_ingestion_events", "Count events received, by outcome (accepted, duplicate, rejected).",
    ["outcome"], registry=REGISTRY,
)  # fmt: skip
JOB_RUNS = Counter(
    "camcount_job_runs",
    "Runs of periodic jobs in this process, by outcome.",
    ["job", "status"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "camcount_job_duration_seconds", "Duration of periodic jobs run in this process.", ["job"], registry=REGISTRY,
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)  # fmt: skip

# Refreshed from the database at scrape time.
TENANTS = Gauge(
    "camcount_tenants",
    "Tenants by status, plan and placement.",
    ["status", "plan", "placement"],
    registry=REGISTRY,
)
TENANTS_BY_HEALTH = Gauge(
    "camcount_tenants_by_health", "Tenants by their last health status (UNKNOWN: not checked yet).",
    ["health"], registry=REGISTRY,
)  # fmt: skip
JOB_LAST_DURATION = Gauge(
    "camcount_job_last_duration_seconds", "Duration of the last finished run of each job.", ["job"],
    registry=REGISTRY,
)  # fmt: skip
JOB_LAST_SUCCESS = Gauge(
    "camcount_job_last_success_timestamp_seconds", "When each job last succeeded (Unix time).", ["job"],
    registry=REGISTRY,
)  # fmt: skip
JOB_FAILURES_LAST_DAY = Gauge(
    "camcount_job_failures_last_day", "Failed or abandoned runs of each job in the last 24 hours.", ["job"],
    registry=REGISTRY,
)  # fmt: skip
POOL_CONNECTIONS = Gauge(
    "camcount_db_pool_connections", "Application-role pool connections, by state (in_use, idle).",
    ["server", "kind", "state"], registry=REGISTRY,
)  # fmt: skip
POOL_MAX = Gauge(
    "camcount_db_pool_max_connections", "Maximum size of the application-role pools.", ["server", "kind"],
    registry=REGISTRY,
)  # fmt: skip
POOL_WAITING = Gauge(
    "camcount_db_pool_requests_waiting", "Requests waiting for a pool connection.", ["server", "kind"],
    registry=REGISTRY,
)  # fmt: skip
POOLS_OPEN = Gauge("camcount_db_pools_open", "Open application-role pools.", registry=REGISTRY)


def record_ingestion(accepted: int, duplicate: int, rejected: int) -> None:
    """Count one ingestion batch's outcomes (call once per batch, after it committed)."""
    for outcome, value in (("accepted", accepted), ("duplicate", duplicate), ("rejected", rejected)):
        if value < 0:
            raise ValueError(f"{outcome} must not be negative")
        INGESTED_EVENTS.labels(outcome).inc(value)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_LATENCY.labels(*labels).observe(seconds)


def observe_job(job: str, status: str, seconds: float) -> None:
    JOB_RUNS.labels(job, status).inc()
    JOB_DURATION.labels(job).observe(seconds)


_TENANTS_QUERY = """
SELECT status, plan, placement, count(*) FROM control.tenants WHERE status <> 'provisioning' GROUP BY 1, 2, 3
"""
_HEALTH_QUERY = """
SELECT coalesce(h.status, 'UNKNOWN'), count(*)
FROM control.tenants t LEFT JOIN control.tenant_health h ON h.tenant_id = t.id
WHERE t.status <> 'provisioning' GROUP BY 1
"""
_JOBS_QUERY = """
SELECT job,
       (array_agg(extract(epoch FROM finished_at - started_at) ORDER BY finished_at DESC)
            FILTER (WHERE status IN ('succeeded', 'failed')))[1],
       extract(epoch FROM max(finished_at) FILTER (WHERE status = 'succeeded')),
       count(*) FILTER (WHERE status IN ('failed', 'abandoned') AND started_at > now() - interval '1 day')
FROM control.job_runs WHERE started_at > now() - interval '30 days' GROUP BY job
"""


async def refresh_from_database(db: Database) -> None:
    """Set the installation-wide gauges from the control plane and the open pools."""
    async with db.app_control() as conn:
        tenants = await (await conn.execute(_TENANTS_QUERY)).fetchall()
        health = await (await conn.execute(_HEALTH_QUERY)).fetchall()
        jobs = await (await conn.execute(_JOBS_QUERY)).fetchall()
    TENANTS.clear()
    for status, plan, placement, count in tenants:
        TENANTS.labels(status, plan, placement).set(count)
    TENANTS_BY_HEALTH.clear()
    for name in ("HEALTHY", "WARNING", "CRITICAL", "UNKNOWN"):
        TENANTS_BY_HEALTH.labels(name).set(0)
    for status, count in health:
        TENANTS_BY_HEALTH.labels(status).set(count)
    for gauge in (JOB_LAST_DURATION, JOB_LAST_SUCCESS, JOB_FAILURES_LAST_DAY):
        gauge.clear()
    for job, last_duration, last_success, failures in jobs:
        if last_duration is not None:
            JOB_LAST_DURATION.labels(job).set(float(last_duration))
        if last_success is not None:
            JOB_LAST_SUCCESS.labels(job).set(float(last_success))
        JOB_FAILURES_LAST_DAY.labels(job).set(failures)
    refresh_pools(db)


def refresh_pools(db: Database) -> None:
    for gauge in (POOL_CONNECTIONS, POOL_MAX, POOL_WAITING):
        gauge.clear()
    stats = pool_stats(db)
    POOLS_OPEN.set(len(stats))
    totals: dict[tuple[str, str], dict[str, int]] = {}
    for server, kind, values in stats:
        into = totals.setdefault((server, kind), {})
        for key, value in values.items():
            into[key] = into.get(key, 0) + value
    for (server, kind), values in totals.items():
        size, idle = values.get("pool_size", 0), values.get("pool_available", 0)
        POOL_CONNECTIONS.labels(server, kind, "in_use").set(size - idle)
        POOL_CONNECTIONS.labels(server, kind, "idle").set(idle)
        POOL_MAX.labels(server, kind).set(values.get("pool_max", 0))
        POOL_WAITING.labels(server, kind).set(values.get("requests_waiting", 0))


def pool_stats(db: Database) -> list[tuple[str, str, dict[str, int]]]:
    """(server, kind, psycopg_pool stats) per open application pool; kind is main or tenant_db.

    The database name is not a label: tenant databases are unbounded in number.
    """
    return [
        (server, "main" if (server, dbname) == ("default", db.main_dbname) else "tenant_db", stats)
        for server, dbname, stats in db.pool_stats()
    ]


def exposition() -> tuple[bytes, str]:
    """The text exposition of every camcount metric and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
