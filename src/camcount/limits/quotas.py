"""Periodic quotas (API calls per day, events per month) without a database write per request.

The design is a lease: each API process reserves a block of units for a (tenant, resource) in
one atomic, conditional statement on ``control.tenant_limits`` and then serves requests from that
block in memory. The reservation never grants more than ``limit - current_usage`` (the row is
locked by the statement), and ``current_usage`` counts every unit granted to any process, so the
number of accepted requests in a period can **never exceed the limit**, across any number of
processes, with no Redis needed.

The price of that guarantee is the opposite margin: a process may be refused while another
process still holds unused units. That early refusal is bounded by ``(processes - 1) * block``
units (block = 1% of the limit, at least 1, at most ``max_block`` or, for requests of many units
such as event batches, room for ``REQUESTS_AHEAD`` more of them; a busy lease's block grows up to
the 1% as it is refilled faster than every ``refill_seconds``), and it closes within
``idle_release`` seconds: a process returns a lease it has not touched for that long (and every
lease at shutdown). A process that crashes loses its unused block for the rest of the period.

Counting: every accepted unit is added to an in-memory tally per tenant, resource and local day,
flushed every ``flush_interval`` seconds into ``control.tenant_resource_usage`` (one upsert per
tenant and resource), which is the per-day history billing reads.

Periods reset at the boundary in the tenant's time zone: the reservation statement sets
``period_start`` to the current period and restarts ``current_usage`` from zero when the stored
period is older; :func:`reset_expired_periods` does the same for idle tenants on a schedule.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from camcount.db.pools import Database
from camcount.db.unnest import unnest_params
from camcount.errors import TooManyRequests
from camcount.limits.periods import local_date, period_bounds, zone
from camcount.limits.plans import QUOTAS
from camcount.periodic import PeriodicFlush
from camcount.tenancy.models import Tenant

API_CALLS = "api_calls_per_day"
EVENTS = "events_per_month"


class QuotaExceeded(TooManyRequests):
    """A periodic quota is used up; the message names it, the usage and when it resets."""

    def __init__(self, resource: str, used: int, limit: int, resets_at: datetime, tz: str) -> None:
        local = resets_at.astimezone(zone(tz)).isoformat(timespec="seconds")
        super().__init__(
            f"quota exceeded: {resource} {used} of {limit}; resets at {local}. A larger plan or an operator "
            "override raises it",
            code="quota-exceeded",
            retry_after=seconds_until(resets_at),
            headers={"X-Quota-Resource": resource, "X-Quota-Reset": resets_at.isoformat(timespec="seconds")},
        )
        self.resource = resource
        self.used = used
        self.limit = limit
        self.resets_at = resets_at


@dataclass
class QuotaState:
    """What a caller may show: the quota, what is used (granted) and when it resets."""

    resource: str
    limit: int | None
    used: int
    resets_at: datetime

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


@dataclass
class _Lease:
    period_start: datetime
    period_end: datetime
    limit: int | None = None  # None: no limit row (unlimited), only counted
    remaining: int = 0  # granted to this process, not yet consumed
    used_in_db: int = 0  # current_usage after our last reservation (includes other processes)
    refused_until: float = 0.0  # monotonic: refuse without asking the database until then
    last_used: float = field(default_factory=time.monotonic)
    thresholds_recorded: set[int] = field(default_factory=set)
    growth: int = 1  # the block's multiple (see QuotaMeter._grow)
    refilled_at: float = -math.inf  # monotonic time of the last refill


# Reserve up to %(want)s units for the current period; restart the count when the period moved.
# The innermost sub-select locks the row and returns its latest version, so "used" is what we
# update from. A grant never passes the unit just below an alert threshold (THRESHOLDS, percent of
# the limit) unless this request needs the units (%(need)s): current_usage then crosses a threshold
# only in the reservation made for the request that uses the threshold's unit, so the alert is
# recorded when usage reaches it, not up to a block before.
_RESERVE = """
UPDATE control.tenant_limits tl
SET current_usage = g.used + g.granted, period_start = %(ps)s, updated_at = now()
FROM (SELECT o.tenant_id, o.resource, o.used,
             least(%(want)s, greatest(o.limit_value - o.used, 0),
                   greatest(coalesce((SELECT min(stop) FROM (
                                          SELECT ceil(o.limit_value * pct / 100.0)::bigint - 1 AS stop
                                          FROM unnest(%(thresholds)s::int[]) pct) stops
                                      WHERE stop > o.used), o.limit_value) - o.used,
                            %(need)s)) AS granted
      FROM (SELECT tenant_id, resource, limit_value,
                   CASE WHEN period_start IS DISTINCT FROM %(ps)s THEN 0 ELSE current_usage END AS used
            FROM control.tenant_limits
            WHERE tenant_id = %(t)s AND resource = %(r)s AND (period_start IS NULL OR period_start <= %(ps)s)
            FOR UPDATE) o) g
WHERE tl.tenant_id = g.tenant_id AND tl.resource = g.resource
RETURNING g.granted, tl.current_usage, tl.limit_value
"""

_RELEASE = """
UPDATE control.tenant_limits SET current_usage = greatest(current_usage - %s, 0), updated_at = now()
WHERE tenant_id = %s AND resource = %s AND period_start = %s
"""

# The day's tallies of every tenant in one statement. A tenant deleted since its units were counted
# is skipped: its row would break the foreign key, and with it every other tenant's history.
_HISTORY = """
INSERT INTO control.tenant_resource_usage AS u (tenant_id, resource, usage_date, usage_value)
SELECT n.tenant_id, n.resource, n.usage_date, n.usage_value
FROM unnest(%(tenant_ids)s::int8[], %(resources)s::text[], %(dates)s::date[], %(values)s::int8[])
    AS n (tenant_id, resource, usage_date, usage_value)
WHERE EXISTS (SELECT FROM control.tenants t WHERE t.id = n.tenant_id)
ORDER BY 1, 2, 3
ON CONFLICT (tenant_id, resource, usage_date)
DO UPDATE SET usage_value = u.usage_value + EXCLUDED.usage_value, updated_at = now()
"""

_THRESHOLD = """
INSERT INTO control.usage_threshold_events (tenant_id, resource, threshold, period_start, usage_value, limit_value)
VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""


# Usage alerts, in percent of the limit: recorded once per period in control.usage_threshold_events.
THRESHOLDS = (80, 100)

# A refill for a request of many units (an event batch) reserves room for this many more like it.
REQUESTS_AHEAD = 4


class QuotaMeter(PeriodicFlush):
    """One per API process. ``consume`` is the hot path: memory only, except once per block."""

    def __init__(
        self,
        db: Database,
        *,
        block_fraction: float = 0.01,
        max_block: int = 1000,
        flush_interval: float = 1.0,
        idle_release: float = 10.0,
        refusal_recheck: float = 1.0,
        refill_seconds: float = 1.0,
    ) -> None:
        super().__init__(db, flush_interval)
        self.block_fraction = block_fraction
        self.max_block = max_block
        self.idle_release = idle_release
        self.refusal_recheck = refusal_recheck
        self.refill_seconds = refill_seconds
        self._leases: dict[tuple[int, str], _Lease] = {}
        self._tally: dict[tuple[int, str, date], int] = {}
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._days: dict[str, tuple[datetime, datetime, date]] = {}  # zone -> its local day in UTC

    # -- hot path -------------------------------------------------------------------------------

    async def consume(
        self, tenant: Tenant, resource: str = API_CALLS, n: int = 1, *, now: datetime | None = None
    ) -> QuotaState:
        """Count ``n`` units, or raise QuotaExceeded (and count nothing) when the quota is used up."""
        now = now or datetime.now(UTC)
        key = (tenant.id, resource)
        lease = self._leases.get(key)
        if lease is None or not lease.period_start <= now < lease.period_end:
            async with self._lock(key):
                lease = self._leases.get(key)
                if lease is None or not lease.period_start <= now < lease.period_end:
                    lease = await self._new_period(tenant, resource, now)
        if lease.limit is not None:
            if lease.remaining >= n:
                lease.remaining -= n  # no await between the check and the take
            else:
                await self._refill_and_take(tenant, resource, lease, n)
        lease.last_used = time.monotonic()
        tally_key = (tenant.id, resource, self._local_day(now, tenant.timezone))
        self._tally[tally_key] = self._tally.get(tally_key, 0) + n
        used = lease.used_in_db - lease.remaining
        return QuotaState(resource, lease.limit, used, lease.period_end)

    def refund(self, tenant: Tenant, resource: str, n: int, *, now: datetime) -> None:
        """Give back ``n`` units taken by :meth:`consume` at ``now`` for work that did not count.

        Ingestion takes the events quota for a whole batch before storing it, then gives back what
        was not stored (duplicates of earlier deliveries, events refused by the database checks),
        so a retried batch costs nothing. The units return to this process's lease (and, through it,
        to ``current_usage`` when the lease is released) and leave the day's tally.
        """
        lease = self._leases.get((tenant.id, resource))
        if n <= 0 or lease is None or not lease.period_start <= now < lease.period_end:
            return  # the period has turned since: nothing of it to give back
        if lease.limit is not None:
            lease.remaining += n
        tally_key = (tenant.id, resource, self._local_day(now, tenant.timezone))
        self._tally[tally_key] = self._tally.get(tally_key, 0) - n  # the flush adds it, even below zero

    def _local_day(self, now: datetime, tz: str) -> date:
        """``local_date(now, tz)``, from the zone's current local day ``[start, end)`` while ``now`` is in it."""
        day = self._days.get(tz)
        if day is None or not day[0] <= now < day[1]:
            start, end = period_bounds("daily", now, tz)
            day = self._days[tz] = (start, end, local_date(now, tz))
        return day[2]

    def _lock(self, key: tuple[int, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _block(self, limit: int, n: int = 1, growth: int = 1) -> int:
        """Units to reserve at a refill: ``max_block`` or room for a few more requests of ``n`` units,
        times the lease's ``growth``.

        Never more than ``block_fraction`` of the limit. A batch of 1,000 events would otherwise
        refill (a control-plane transaction) on every request.
        """
        return min(self._share(limit), max(self.max_block, REQUESTS_AHEAD * n) * growth)

    def _share(self, limit: int) -> int:
        """The largest block: ``block_fraction`` of the limit, at least 1."""
        return max(1, math.ceil(limit * self.block_fraction))

    def _grow(self, lease: _Lease, n: int) -> None:
        """Size the lease's next block to its demand, as a refill is about to happen.

        A lease refilled again within ``refill_seconds`` doubles its block (up to ``block_fraction``
        of the limit): a tenant sending 100 batches a second would otherwise write its limit row 25
        times a second, each refill a control-plane transaction that the tenant's other requests in
        this process wait for. One refilled less often than every four ``refill_seconds`` halves it
        back, so a quiet tenant's lease (and the early-refusal margin it holds) stays small.
        """
        now = time.monotonic()
        since, lease.refilled_at = now - lease.refilled_at, now
        assert lease.limit is not None
        can_grow = self._block(lease.limit, n, lease.growth) < self._share(lease.limit)
        if since < self.refill_seconds and can_grow:
            lease.growth *= 2
        elif since > 4 * self.refill_seconds and lease.growth > 1:
            lease.growth //= 2

    async def _new_period(self, tenant: Tenant, resource: str, now: datetime) -> _Lease:
        key = (tenant.id, resource)
        old = self._leases.pop(key, None)
        if old is not None and old.remaining and old.limit is not None:
            await self._release(tenant.id, resource, old)
        start, end = period_bounds(QUOTAS.get(resource, "daily"), now, tenant.timezone)
        lease = _Lease(start, end)
        async with self.db.app_control() as conn:
            cur = await conn.execute(
                "SELECT limit_value, current_usage, period_start FROM control.tenant_limits "
                "WHERE tenant_id = %s AND resource = %s",
                key,
            )
            row = await cur.fetchone()
        if row is not None:
            lease.limit = int(row[0])
            lease.used_in_db = int(row[1]) if row[2] == start else 0
        self._leases[key] = lease
        return lease

    async def _refill_and_take(self, tenant: Tenant, resource: str, lease: _Lease, n: int) -> None:
        """Reserve more from the database if needed and take ``n``, all under the lease's lock.

        The take happens with no await after the check, so concurrent requests can neither drive
        the lease below zero (admitting more than was reserved) nor take the units just reserved
        for this request (refusing it early).
        """
        async with self._lock((tenant.id, resource)):
            if lease.remaining >= n:
                lease.remaining -= n  # another coroutine refilled while we waited
                return
            if time.monotonic() < lease.refused_until:
                self._refuse(tenant, resource, lease)
            assert lease.limit is not None
            need = n - lease.remaining
            self._grow(lease, n)
            want = max(self._block(lease.limit, n, lease.growth), need)
            params = {"want": want, "need": need, "thresholds": list(THRESHOLDS), "ps": lease.period_start,
                      "t": tenant.id, "r": resource}  # fmt: skip
            async with self.db.app_control() as conn:
                cur = await conn.execute(_RESERVE, params)
                row = await cur.fetchone()
                if row is None:
                    # The limit row is gone (override removed, plan without it): unlimited now.
                    lease.limit = None
                    return
                granted, lease.used_in_db, limit = int(row[0]), int(row[1]), int(row[2])
                lease.limit = limit
                lease.remaining += granted
                refused = lease.remaining < n
                if not refused:
                    lease.remaining -= n
                else:
                    # All-or-nothing: keep what we have for smaller requests; refuse this one.
                    lease.refused_until = time.monotonic() + self.refusal_recheck
                await self._record_thresholds(conn, tenant.id, resource, lease)
            if refused:
                self._refuse(tenant, resource, lease)

    def _refuse(self, tenant: Tenant, resource: str, lease: _Lease) -> None:
        assert lease.limit is not None
        used = min(lease.used_in_db - lease.remaining, lease.limit)
        raise QuotaExceeded(resource, used, lease.limit, lease.period_end,
                            tenant.timezone)  # fmt: skip

    async def _record_thresholds(self, conn: Any, tenant_id: int, resource: str, lease: _Lease) -> None:
        if not lease.limit:
            return
        for threshold in THRESHOLDS:
            if threshold in lease.thresholds_recorded:
                continue
            if lease.used_in_db * 100 >= lease.limit * threshold:
                await conn.execute(
                    _THRESHOLD,
                    (tenant_id, resource, threshold, lease.period_start, lease.used_in_db, lease.limit),
                )
                lease.thresholds_recorded.add(threshold)

    # -- background -----------------------------------------------------------------------------

    async def _release(self, tenant_id: int, resource: str, lease: _Lease) -> None:
        if lease.remaining <= 0:
            return
        unused, lease.remaining = lease.remaining, 0
        async with self.db.app_control() as conn:
            await conn.execute(_RELEASE, (unused, tenant_id, resource, lease.period_start))

    async def flush(self, *, release_all: bool = False) -> int:
        """Write the per-day tallies; return idle (or, with ``release_all``, every) unused lease."""
        tally, self._tally = self._tally, {}
        written = 0
        if tally:
            try:
                await self._write_history(tally)
                written = sum(tally.values())
            except Exception:
                # Keep the counts for the next flush rather than losing them.
                for k, n in tally.items():
                    self._tally[k] = self._tally.get(k, 0) + n
                raise
        idle_before = time.monotonic() - self.idle_release
        now = datetime.now(UTC)
        for key, lease in list(self._leases.items()):
            if lease.remaining and lease.limit is not None and (release_all or lease.last_used < idle_before):
                async with self._lock(key):
                    await self._release(key[0], key[1], lease)
            if now >= lease.period_end and not lease.remaining:
                self._leases.pop(key, None)
        return written

    async def _write_history(self, tally: dict[tuple[int, str, date], int]) -> None:
        rows = ((*key, units) for key, units in sorted(tally.items()))
        params = unnest_params(rows, "tenant_ids", "resources", "dates", "values")
        async with self.db.app_control() as conn:
            await conn.execute(_HISTORY, params)

    async def final_flush(self) -> int:
        """At shutdown: the tallies, and every unused lease back to its tenant."""
        return await self.flush(release_all=True)


async def reset_expired_periods(db: Database, *, now: datetime) -> dict[str, int]:
    """Scheduled: start the new period for quota rows whose period ended (idle tenants included).

    The hot path resets lazily on the first reservation of a period; this keeps analytics right
    for tenants that sent nothing since the boundary. Idempotent; safe alongside live traffic (a
    row already in its current period is left alone).
    """
    reset = 0
    async with db.owner() as conn, conn.transaction():
        cur = await conn.execute(
            """
            SELECT tl.tenant_id, tl.resource, tl.reset_period, t.timezone, tl.period_start
            FROM control.tenant_limits tl JOIN control.tenants t ON t.id = tl.tenant_id
            WHERE tl.reset_period IS NOT NULL AND t.status <> 'provisioning'
            """
        )
        for tenant_id, resource, period, tz, stored in await cur.fetchall():
            start, _ = period_bounds(period, now, tz)
            if stored is None or stored < start:
                await conn.execute(
                    """
                    UPDATE control.tenant_limits SET current_usage = 0, period_start = %s, updated_at = now()
                    WHERE tenant_id = %s AND resource = %s AND (period_start IS NULL OR period_start < %s)
                    """,
                    (start, tenant_id, resource, start),
                )
                reset += 1
    return {"reset": reset}


def seconds_until(moment: datetime, now: datetime | None = None) -> int:
    return max(1, math.ceil((moment - (now or datetime.now(UTC))).total_seconds()))
