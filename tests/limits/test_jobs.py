"""The limits and billing jobs are registered and run through the scheduler's registry."""

from __future__ import annotations

from datetime import UTC, datetime

from camcount.db.pools import Database
from camcount.jobs.registry import JobContext, get_job


async def test_limits_and_billing_jobs_run_from_the_registry(db: Database) -> None:
    now = datetime.now(UTC)
    context = JobContext(db=db, now=now, slot=now)
    reset = await get_job("usage_reset").run(context)
    assert set(reset) == {"reset"}
    measured = await get_job("usage_measure").run(context)
    assert {"measured", "exact", "estimate", "tenants", "crossings"} <= set(measured)
    billed = await get_job("billing_cycle").run(context)
    assert billed["period"] == f"{now.year if now.month > 1 else now.year - 1}-{(now.month - 2) % 12 + 1:02d}"
    again = await get_job("billing_cycle").run(context)
    assert again["created"] == 0  # idempotent
