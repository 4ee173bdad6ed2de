"""The ``retention`` job: each tenant keeps raw events for ``retention_days`` and rollups longer.

Effective retention per tenant: the tenant's configuration (``retention_days``,
``rollup_retention_days``, integers) or else its plan's (``control.plans.retention_days``,
``rollup_retention_days``). Events (``counting_results`` and their ``counting_event_ids``) with
``occurred_at`` before ``now - retention_days`` go; rollup buckets that ended before
``now - rollup_retention_days`` go.

* Schema and database placements own their partitions: every monthly partition that lies wholly
  before the boundary is dropped (its rows counted first); what remains (the partition that
  straddles the boundary, the default partition) is deleted in batches.
* Pooled tenants share partitions, so their rows are deleted in batches inside the tenant's own
  context (RLS is forced, even for the owner). Afterwards a shared monthly partition older than
  every pooled tenant's retention is dropped once it is empty.

Every batch is its own short transaction deleting at most ``batch_size`` rows by primary key, so
ingestion (which only touches recent rows) is never blocked for long; a run stops after
``max_batches`` per table and tenant and the next run continues (the tenant is listed as
``incomplete``). The job also prunes the operations tables (job runs, ingestion counters).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, LiteralString

from psycopg import AsyncConnection, errors, sql

from camcount.db.pools import Database
from camcount.db.scope import set_tenant_context
from camcount.jobs.partitions import LOCK_TIMEOUT
from camcount.jobs.registry import JobContext, JobFailed, job
from camcount.tenancy.lifecycle import list_tenants
from camcount.tenancy.models import POOLED_SCHEMA, Placement, Tenant
from camcount.tenancy.partitions import PARENT_TABLE, add_months, existing_partitions

BATCH_SIZE = 5_000
MAX_BATCHES = 200
ROLLUP_BUCKET = timedelta(minutes=15)
OPERATIONS_KEEP_DAYS = 90
_PARTITION_NAME = re.compile(rf"^{PARENT_TABLE}_p(\d{{4}})_(\d{{2}})$")

logger = logging.getLogger("camcount.jobs.retention")

# (table, statement): delete one batch of the tenant's rows older than the boundary, by primary key
# (counting_results is found by its (tenant_id, occurred_at, ...) index, rollups by partition-free
# primary key ranges).
_BATCH_DELETES: tuple[tuple[str, LiteralString], ...] = (
    ("counting_results", """
        DELETE FROM counting_results WHERE (tenant_id, camera_id, occurred_at, event_id) IN (
            SELECT tenant_id, camera_id, occurred_at, event_id FROM counting_results
            WHERE tenant_id = %(tenant_id)s AND occurred_at < %(events_before)s LIMIT %(limit)s)
    """),
    ("counting_rollups", """
        DELETE FROM counting_rollups WHERE (tenant_id, camera_id, bucket_start, count_type, object_class) IN (
            SELECT tenant_id, camera_id, bucket_start, count_type, object_class FROM counting_rollups
            WHERE tenant_id = %(tenant_id)s AND bucket_start <= %(rollups_before)s LIMIT %(limit)s)
    """),
)  # fmt: skip

# The idempotency ledger has no index on occurred_at (tenant migration 0002 dropped it to speed up
# ingestion), so it is walked in primary-key order, one chunk per transaction, deleting the old rows
# of each chunk: every row is read once per run, whatever the number of batches.
_EVENT_IDS_CHUNK = """
WITH chunk AS (
    SELECT camera_id, event_id, occurred_at FROM counting_event_ids
    WHERE tenant_id = %(tenant_id)s AND (camera_id, event_id) > (%(camera_id)s, %(event_id)s)
    ORDER BY camera_id, event_id LIMIT %(limit)s
), gone AS (
    DELETE FROM counting_event_ids d USING chunk
    WHERE d.tenant_id = %(tenant_id)s AND d.camera_id = chunk.camera_id AND d.event_id = chunk.event_id
      AND chunk.occurred_at < %(events_before)s
    RETURNING 1
), last AS (
    SELECT camera_id, event_id FROM chunk ORDER BY camera_id DESC, event_id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM gone), (SELECT camera_id FROM last), (SELECT event_id FROM last)
"""

_RETENTION_QUERY = """
SELECT t.id,
       coalesce((SELECT c.value::integer FROM control.tenant_configs c
                 WHERE c.tenant_id = t.id AND c.key = 'retention_days' AND c.value_type = 'integer'
                   AND c.value ~ '^[0-9]{1,6}$' AND c.value::integer > 0), p.retention_days),
       coalesce((SELECT c.value::integer FROM control.tenant_configs c
                 WHERE c.tenant_id = t.id AND c.key = 'rollup_retention_days' AND c.value_type = 'integer'
                   AND c.value ~ '^[0-9]{1,6}$' AND c.value::integer > 0), p.rollup_retention_days)
FROM control.tenants t JOIN control.plans p ON p.code = t.plan
WHERE t.status <> 'provisioning'
"""


@dataclass(frozen=True)
class Retention:
    events_days: int
    rollups_days: int

    def events_before(self, now: datetime) -> datetime:
        return now - timedelta(days=self.events_days)

    def rollups_before(self, now: datetime) -> datetime:
        """Buckets starting at or before this instant ended before the rollup boundary."""
        return now - timedelta(days=self.rollups_days) - ROLLUP_BUCKET


@dataclass
class TenantRetention:
    slug: str
    deleted: dict[str, int] = field(default_factory=dict)  # table -> rows deleted (incl. dropped)
    partitions_dropped: list[str] = field(default_factory=list)
    complete: bool = True
    error: str | None = None

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def as_dict(self) -> dict[str, Any]:
        return {"tenant": self.slug, "deleted": self.deleted, "partitions_dropped": self.partitions_dropped,
                "complete": self.complete, "error": self.error}  # fmt: skip


async def retention_by_tenant(db: Database) -> dict[int, Retention]:
    async with db.owner() as conn:
        rows = await (await conn.execute(_RETENTION_QUERY)).fetchall()
    return {tenant_id: Retention(events, rollups) for tenant_id, events, rollups in rows}


def partition_month(name: str) -> date | None:
    match = _PARTITION_NAME.match(name)
    return date(int(match.group(1)), int(match.group(2)), 1) if match else None


def _month_end(month: date) -> datetime:
    upper = add_months(month, 1)
    return datetime(upper.year, upper.month, 1, tzinfo=UTC)


async def drop_partitions_before(
    conn: AsyncConnection, schema: str, boundary: datetime, *, only_empty: bool = False
) -> tuple[list[str], int]:
    """Drop the monthly partitions of ``schema`` that end at or before ``boundary``.

    Returns the names dropped and the rows they held. The connection is in autocommit; each drop
    is its own short transaction with a lock timeout (a busy table is left for the next run).
    """
    dropped, rows = [], 0
    for name in sorted(await existing_partitions(conn, schema)):
        month = partition_month(name)
        if month is None or _month_end(month) > boundary:
            continue
        table = sql.Identifier(schema, name)
        try:
            async with conn.transaction():
                await conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
                await conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
                row = await (await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table))).fetchone()
                count = int(row[0]) if row else 0
                if only_empty and count:
                    continue
                await conn.execute(sql.SQL("DROP TABLE {}").format(table))
        except errors.LockNotAvailable:
            logger.warning("partition busy; it will be dropped next time", extra={"partition": name})
            continue
        dropped.append(name)
        rows += count
    return dropped, rows


async def delete_in_batches(
    conn: AsyncConnection,
    tenant: Tenant,
    retention: Retention,
    *,
    now: datetime,
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
) -> tuple[dict[str, int], bool]:
    """Batched deletes in the tenant's context; returns rows deleted per table and completeness."""
    params = {"tenant_id": tenant.id, "events_before": retention.events_before(now),
              "rollups_before": retention.rollups_before(now), "limit": batch_size}  # fmt: skip
    deleted: dict[str, int] = {}
    complete = True
    deleted["counting_event_ids"], complete = await _delete_event_ids(conn, tenant, params, max_batches)
    for table, statement in _BATCH_DELETES:
        total = 0
        for _ in range(max_batches):
            async with conn.transaction():
                await set_tenant_context(conn, tenant.location)
                count = (await conn.execute(statement, params)).rowcount
            total += count
            if count < batch_size:
                break
        else:
            complete = False
        deleted[table] = total
    return deleted, complete


async def _delete_event_ids(
    conn: AsyncConnection, tenant: Tenant, params: dict[str, Any], max_batches: int
) -> tuple[int, bool]:
    key: tuple[int, str] = (-1, "")
    total = 0
    for _ in range(max_batches):
        async with conn.transaction():
            await set_tenant_context(conn, tenant.location)
            cur = await conn.execute(_EVENT_IDS_CHUNK, {**params, "camera_id": key[0], "event_id": key[1]})
            row = await cur.fetchone()
        assert row is not None
        total += int(row[0])
        if row[1] is None:
            return total, True
        key = (int(row[1]), str(row[2]))
    return total, False


async def apply_retention(
    db: Database,
    tenant: Tenant,
    retention: Retention,
    *,
    now: datetime,
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
) -> TenantRetention:
    """Enforce one tenant's retention in its placement."""
    report = TenantRetention(tenant.slug)
    async with db.owner(tenant.database_name, server=tenant.server) as conn:
        await conn.set_autocommit(True)
        if tenant.placement is not Placement.POOLED:
            dropped, rows = await drop_partitions_before(
                conn, tenant.schema_name, retention.events_before(now)
            )
            report.partitions_dropped = dropped
            report.deleted["counting_results"] = rows
        deleted, report.complete = await delete_in_batches(
            conn, tenant, retention, now=now, batch_size=batch_size, max_batches=max_batches
        )
    for table, count in deleted.items():
        report.deleted[table] = report.deleted.get(table, 0) + count
    return report


async def _list_tenants(db: Database) -> list[Tenant]:
    async with db.owner() as conn:
        return await list_tenants(conn)


async def prune_operations(db: Database, *, now: datetime) -> dict[str, int]:
    before = now - timedelta(days=OPERATIONS_KEEP_DAYS)
    async with db.owner() as conn:
        await conn.set_autocommit(True)
        runs = await conn.execute(
            "DELETE FROM control.job_runs WHERE started_at < %s AND status <> 'running'", (before,)
        )
        counters = await conn.execute("DELETE FROM control.ingestion_counters WHERE hour < %s", (before,))
    return {"job_runs": runs.rowcount, "ingestion_counters": counters.rowcount}


async def enforce_all(
    db: Database, *, now: datetime, batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES
) -> dict[str, Any]:
    """Every tenant's retention, then empty shared partitions, then the operations tables."""
    policies = await retention_by_tenant(db)
    tenants = await _list_tenants(db)
    reports: list[TenantRetention] = []
    for tenant in tenants:
        retention = policies.get(tenant.id)
        if retention is None:
            continue
        try:
            reports.append(
                await apply_retention(
                    db, tenant, retention, now=now, batch_size=batch_size, max_batches=max_batches
                )
            )
        except (errors.Error, OSError) as exc:
            reports.append(TenantRetention(tenant.slug, error=f"{type(exc).__name__}: {exc}".strip()))
    # A shared partition may go once it is older than the longest pooled retention (and empty).
    pooled = [policies[t.id] for t in tenants if t.placement is Placement.POOLED and t.id in policies]
    longest = max((p.events_days for p in pooled or policies.values()), default=None)
    shared_dropped: list[str] = []
    if longest is not None:
        async with db.owner() as conn:
            await conn.set_autocommit(True)
            shared_dropped, _ = await drop_partitions_before(
                conn, POOLED_SCHEMA, now - timedelta(days=longest), only_empty=True
            )
    totals: dict[str, int] = {}
    for report in reports:
        for table, count in report.deleted.items():
            totals[table] = totals.get(table, 0) + count
    return {
        "tenants": len(reports),
        "deleted": totals,
        "deleted_total": sum(totals.values()),
        "partitions_dropped": sum(len(r.partitions_dropped) for r in reports) + len(shared_dropped),
        "shared_partitions_dropped": shared_dropped,
        "incomplete": [r.slug for r in reports if not r.complete],
        "failed": [r.as_dict() for r in reports if r.error],
        "per_tenant": [r.as_dict() for r in reports if r.total or r.partitions_dropped],
        "pruned": await prune_operations(db, now=now),
    }


@job("retention", every=timedelta(hours=1))
async def retention_job(ctx: JobContext) -> dict[str, Any]:
    """Delete events and rollups older than each tenant's retention, in every placement."""
    details = await enforce_all(ctx.db, now=ctx.now)
    if details["failed"]:
        raise JobFailed(f"{len(details['failed'])} tenant(s) failed; see details", details)
    return details
