"""Scheduled jobs of limits and billing (registered in camcount.jobs.registry.JOB_MODULES)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from camcount.billing.cycles import billing_cycle_job
from camcount.jobs.registry import JobContext, job
from camcount.limits.quotas import reset_expired_periods
from camcount.limits.usage import measure_usage


@job(
    "usage_reset",
    every=timedelta(minutes=15),
    description="Start the new quota period for tenants past its end.",
)
async def usage_reset(ctx: JobContext) -> dict[str, Any]:
    return await reset_expired_periods(ctx.db, now=ctx.now)


@job(
    "usage_measure",
    every=timedelta(hours=1),
    description="Measure storage and entity counts; record crossings.",
)
async def usage_measure(ctx: JobContext) -> dict[str, Any]:
    return await measure_usage(ctx.db, now=ctx.now)


@job(
    "billing_cycle",
    every=timedelta(hours=6),
    description="Invoice closed billing periods; mark overdue invoices.",
)
async def billing_cycle(ctx: JobContext) -> dict[str, Any]:
    return await billing_cycle_job(ctx.db, now=ctx.now)
