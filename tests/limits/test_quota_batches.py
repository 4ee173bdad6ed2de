"""Concurrent large batches: the quota meter neither refuses early nor admits more than it reserved."""

from __future__ import annotations

import asyncio
import contextlib
import random

from camcount.db.pools import Database
from camcount.limits.plans import set_tenant_limit
from camcount.limits.quotas import EVENTS, QuotaExceeded, QuotaMeter
from tests.fixtures.tenants import TenantFactory


async def test_concurrent_1000_event_batches_under_a_large_quota_are_all_admitted_and_counted(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    await set_tenant_limit(db, tenant.slug, EVENTS, 10_000_000, actor="test")
    meter = QuotaMeter(db)

    lowest: list[int] = []

    async def sender() -> int:
        sent = 0
        for _ in range(10):
            await meter.consume(tenant, EVENTS, 1000)
            sent += 1000
            lowest.append(min(lease.remaining for lease in meter._leases.values()))
            await asyncio.sleep(random.random() / 500)  # arrive while another request is refilling
        return sent

    sent = sum(await asyncio.gather(*(sender() for _ in range(16))))
    assert sent == 160_000
    assert min(lowest) >= 0  # never admitted more than was reserved
    await meter.stop()
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT current_usage FROM control.tenant_limits WHERE tenant_id = %s AND resource = %s",
            (tenant.id, EVENTS),
        )
        row = await cur.fetchone()
    assert row is not None
    assert row[0] == 160_000


async def test_concurrent_batches_at_the_limit_never_exceed_it(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    await set_tenant_limit(db, tenant.slug, EVENTS, 5_000, actor="test")
    meters = [QuotaMeter(db), QuotaMeter(db)]

    async def sender(meter: QuotaMeter) -> int:
        sent = 0
        for _ in range(10):
            with contextlib.suppress(QuotaExceeded):
                await meter.consume(tenant, EVENTS, 300)
                sent += 300
            await asyncio.sleep(0)
        return sent

    sent = sum(await asyncio.gather(*(sender(m) for m in meters for _ in range(4))))
    assert 5_000 - 2 * 300 <= sent <= 5_000
    for meter in meters:
        await meter.stop()
