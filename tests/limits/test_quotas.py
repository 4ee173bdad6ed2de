"""Periodic quotas: never above the limit across processes, counted per local day, reset at local midnight."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, date, datetime, timedelta

import pytest

from camcount.db.pools import Database
from camcount.limits.plans import set_tenant_limit
from camcount.limits.quotas import API_CALLS, EVENTS, QuotaExceeded, QuotaMeter, reset_expired_periods
from camcount.tenancy.lifecycle import delete_tenant
from camcount.tenancy.models import Tenant
from tests.fixtures.tenants import TenantFactory


async def _row(db: Database, tenant_id: int, resource: str) -> tuple[int, datetime | None]:
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT current_usage, period_start FROM control.tenant_limits WHERE tenant_id = %s AND resource = %s",
            (tenant_id, resource),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), row[1]


async def _limited(
    db: Database, make_tenant: TenantFactory, resource: str, limit: int, **options: str
) -> Tenant:
    """A new tenant whose ``resource`` is limited to ``limit``."""
    tenant = await make_tenant(**options)
    await set_tenant_limit(db, tenant.slug, resource, limit, actor="test")
    return tenant


async def _history(db: Database, tenant_id: int, resource: str) -> dict[date, int]:
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT usage_date, usage_value FROM control.tenant_resource_usage WHERE tenant_id = %s AND resource = %s",
            (tenant_id, resource),
        )
        return {d: int(v) for d, v in await cur.fetchall()}


async def test_parallel_processes_never_accept_more_than_the_daily_quota(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await _limited(db, make_tenant, API_CALLS, 500)
    meters = [QuotaMeter(db, block_fraction=0.02) for _ in range(4)]  # four API processes, block 10
    now = datetime.now(UTC)

    refusals: list[str] = []

    async def hammer(meter: QuotaMeter) -> int:
        accepted = 0
        for _ in range(200):
            try:
                await meter.consume(tenant, API_CALLS, now=now)
                accepted += 1
            except QuotaExceeded as exc:
                refusals.append(str(exc))
        return accepted

    results = await asyncio.gather(*(hammer(m) for m in meters for _ in range(2)))
    accepted = sum(results)
    assert refusals
    assert all(
        r.startswith("quota exceeded: api_calls_per_day ") and " of 500; resets at " in r for r in refusals
    )
    # Never above; early refusal bounded by the blocks other processes still hold.
    assert accepted <= 500
    assert accepted >= 500 - 3 * 10
    for meter in meters:
        await meter.stop()  # returns unused leases and writes the day's tally
    used, _ = await _row(db, tenant.id, API_CALLS)
    assert used == accepted
    history = await _history(db, tenant.id, API_CALLS)
    assert sum(history.values()) == accepted


async def test_quota_resets_at_local_midnight_across_the_autumn_dst_change(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await _limited(db, make_tenant, API_CALLS, 3, timezone="America/New_York")
    meter = QuotaMeter(db)
    # 1 November 2026 is 25 hours long in New York; its last minute is 04:59 UTC on 2 November.
    late = datetime(2026, 11, 2, 4, 59, tzinfo=UTC)
    for _ in range(3):
        await meter.consume(tenant, now=late)
    with pytest.raises(QuotaExceeded) as refused:
        await meter.consume(tenant, now=late)
    assert refused.value.resets_at == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)
    assert "resets at 2026-11-02T00:00:00-05:00" in str(refused.value)
    # Still 1 November locally one hour after UTC midnight (the old, wrong reset time): refused.
    with pytest.raises(QuotaExceeded):
        await meter.consume(tenant, now=datetime(2026, 11, 2, 4, 0, 1, tzinfo=UTC) + timedelta(minutes=58))
    # Local midnight: a fresh period.
    state = await meter.consume(tenant, now=datetime(2026, 11, 2, 5, 0, tzinfo=UTC))
    assert state.limit == 3
    assert state.resets_at == datetime(2026, 11, 3, 5, 0, tzinfo=UTC)
    await meter.stop()
    used, start = await _row(db, tenant.id, API_CALLS)
    assert (used, start) == (1, datetime(2026, 11, 2, 5, 0, tzinfo=UTC))
    assert await _history(db, tenant.id, API_CALLS) == {date(2026, 11, 1): 3, date(2026, 11, 2): 1}


async def test_a_batch_larger_than_what_is_left_is_refused_whole(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await _limited(db, make_tenant, EVENTS, 100)
    meter = QuotaMeter(db)
    await meter.consume(tenant, EVENTS, 60)
    with pytest.raises(QuotaExceeded, match="events_per_month 60 of 100"):
        await meter.consume(tenant, EVENTS, 41)
    await meter.consume(tenant, EVENTS, 40)
    await meter.stop()
    assert (await _row(db, tenant.id, EVENTS))[0] == 100


async def test_event_batches_reserve_room_for_a_few_more_batches_per_refill(
    db: Database, make_tenant: TenantFactory
) -> None:
    # A refill is a control-plane transaction: one per 1,000-event batch was one per request.
    tenant = await _limited(db, make_tenant, EVENTS, 10_000_000)
    meter = QuotaMeter(db, refill_seconds=0)  # a device sending slowly: the block does not grow
    await meter.consume(tenant, EVENTS, 1000)
    assert (await _row(db, tenant.id, EVENTS))[0] == 4000  # this batch and three more like it
    for _ in range(3):
        await meter.consume(tenant, EVENTS, 1000)
    assert (await _row(db, tenant.id, EVENTS))[0] == 4000  # served from memory
    await meter.consume(tenant, EVENTS, 1000)
    assert (await _row(db, tenant.id, EVENTS))[0] == 8000
    await meter.stop()  # the unused lease goes back
    assert (await _row(db, tenant.id, EVENTS))[0] == 5000


async def test_a_lease_refilled_quickly_doubles_its_block_up_to_a_hundredth_of_the_limit(
    db: Database, make_tenant: TenantFactory
) -> None:
    # A busy tenant would otherwise write its limit row on every fourth batch.
    tenant = await _limited(db, make_tenant, EVENTS, 10_000_000)
    meter = QuotaMeter(db, refill_seconds=60)  # every refill of this test comes "soon" after the last
    reserved = []
    for _ in range(230):
        await meter.consume(tenant, EVENTS, 1000)
        reserved.append((await _row(db, tenant.id, EVENTS))[0])
    refills = sorted(set(reserved))
    blocks = [after - before for before, after in zip([0, *refills], refills, strict=False)]
    assert blocks[:5] == [4000, 8000, 16000, 32000, 64000]
    assert blocks[5:] == [100_000, 100_000]  # 1% of the limit, no more
    await meter.stop()
    assert (await _row(db, tenant.id, EVENTS))[0] == 230_000  # what was not used goes back


async def test_a_lease_refilled_slowly_shrinks_back(db: Database, make_tenant: TenantFactory) -> None:
    tenant = await _limited(db, make_tenant, EVENTS, 10_000_000)
    meter = QuotaMeter(db, refill_seconds=0.5)
    for _ in range(4 + 8):  # two quick refills: 4,000 then 8,000
        await meter.consume(tenant, EVENTS, 1000)
    assert (await _row(db, tenant.id, EVENTS))[0] == 12_000
    await asyncio.sleep(2.1)  # more than four refill periods
    await meter.consume(tenant, EVENTS, 1000)
    assert (await _row(db, tenant.id, EVENTS))[0] == 12_000 + 4000  # halved back to the base block
    await meter.stop()


async def test_a_batch_lease_never_takes_more_than_a_hundredth_of_the_limit(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await _limited(db, make_tenant, EVENTS, 200_000)
    meter = QuotaMeter(db)
    await meter.consume(tenant, EVENTS, 1000)
    assert (await _row(db, tenant.id, EVENTS))[0] == 2000  # 1% of 200,000, not 4 batches
    await meter.stop()


async def test_crossing_80_and_100_percent_is_recorded_once_per_period(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await _limited(db, make_tenant, API_CALLS, 10)
    meters = [QuotaMeter(db, block_fraction=0.1), QuotaMeter(db, block_fraction=0.1)]
    for i in range(12):
        with contextlib.suppress(QuotaExceeded):
            await meters[i % 2].consume(tenant)
    for meter in meters:
        await meter.stop()
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT threshold, count(*) FROM control.usage_threshold_events WHERE tenant_id = %s GROUP BY 1",
            (tenant.id,),
        )
        assert dict(await cur.fetchall()) == {80: 1, 100: 1}


async def _thresholds(db: Database, tenant_id: int) -> list[int]:
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT threshold FROM control.usage_threshold_events WHERE tenant_id = %s ORDER BY 1",
            (tenant_id,),
        )
        return [int(r[0]) for r in await cur.fetchall()]


async def _consume(
    meter: QuotaMeter, tenant: Tenant, times: int, resource: str = API_CALLS, n: int = 1
) -> None:
    for _ in range(times):
        await meter.consume(tenant, resource, n)


async def test_80_and_100_percent_are_recorded_by_the_request_that_reaches_them_not_a_block_before(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await _limited(db, make_tenant, API_CALLS, 1000)
    meter = QuotaMeter(db)  # blocks of 10 (1% of the limit)
    await _consume(meter, tenant, 799)
    assert await _thresholds(db, tenant.id) == []
    assert (await _row(db, tenant.id, API_CALLS))[0] == 799  # granted up to just below 80%
    await meter.consume(tenant)  # the 800th call
    assert await _thresholds(db, tenant.id) == [80]
    await _consume(meter, tenant, 199)
    assert await _thresholds(db, tenant.id) == [80]
    await meter.consume(tenant)  # the 1,000th
    assert await _thresholds(db, tenant.id) == [80, 100]
    with pytest.raises(QuotaExceeded):
        await meter.consume(tenant)
    await meter.stop()


async def test_a_batch_that_needs_units_past_a_threshold_gets_them(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await _limited(db, make_tenant, EVENTS, 100_000)
    meter = QuotaMeter(db)
    await _consume(meter, tenant, 79, EVENTS, 1000)
    assert await _thresholds(db, tenant.id) == []
    await meter.consume(tenant, EVENTS, 1500)  # 79,000 + 1,500 crosses 80,000: served, and recorded
    assert await _thresholds(db, tenant.id) == [80]
    await meter.stop()


async def test_the_reset_job_restarts_idle_tenants_at_their_local_midnight(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant(timezone="Asia/Tokyo")
    meter = QuotaMeter(db)
    await meter.consume(tenant, now=datetime(2026, 12, 1, 14, 0, tzinfo=UTC))  # 23:00 in Tokyo
    await meter.stop()
    used, _ = await _row(db, tenant.id, API_CALLS)
    assert used == 1
    await reset_expired_periods(db, now=datetime(2026, 12, 1, 14, 59, tzinfo=UTC))
    assert (await _row(db, tenant.id, API_CALLS))[0] == 1
    await reset_expired_periods(db, now=datetime(2026, 12, 1, 15, 0, tzinfo=UTC))  # midnight in Tokyo
    assert await _row(db, tenant.id, API_CALLS) == (0, datetime(2026, 12, 1, 15, 0, tzinfo=UTC))


async def test_a_tenant_deleted_meanwhile_does_not_block_the_others_history(
    db: Database, make_tenant: TenantFactory
) -> None:
    # Its row would break the foreign key and, with it, every other tenant's billing history.
    kept = await _limited(db, make_tenant, API_CALLS, 1000)
    deleted = await _limited(db, make_tenant, API_CALLS, 1000)
    meter = QuotaMeter(db)
    now = datetime.now(UTC)
    for tenant in (kept, deleted, kept):
        await meter.consume(tenant, API_CALLS, now=now)
    await delete_tenant(db, deleted.slug, actor="test")
    await meter.stop()
    assert sum((await _history(db, kept.id, API_CALLS)).values()) == 2
    assert await _history(db, deleted.id, API_CALLS) == {}
