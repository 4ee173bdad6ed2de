"""Billing: hand-computed invoices to the cent, one invoice however often it runs, valid transitions only."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from camcount.billing.cycles import get_invoice, list_invoices, mark_overdue, run_billing, set_invoice_status
from camcount.billing.export import invoices_csv
from camcount.billing.invoices import GIB, PlanChange, PlanTerms, compute_invoice
from camcount.db.pools import Database
from camcount.errors import Conflict, InvalidInput
from camcount.limits.plans import change_tenant_plan, create_plan, set_plan_price
from camcount.tenancy.models import Tenant
from tests.fixtures.tenants import TenantFactory


async def _plans(db: Database) -> tuple[str, str]:
    """Two plans of this test's own (global plans stay untouched for other tests)."""
    suffix = uuid.uuid4().hex[:8]
    small, large = f"small-{suffix}", f"large-{suffix}"
    await create_plan(db, small, name="Small", base_price="29.99", requests_per_second=10, copy_from="basic",
                      actor="test")  # fmt: skip
    await create_plan(db, large, name="Large", base_price="299.99", requests_per_second=200, copy_from="premium",
                      actor="test")  # fmt: skip
    await set_plan_price(db, large, "cameras", "4.00", actor="test")
    return small, large


async def _backdate(db: Database, tenant: Tenant, created: datetime) -> None:
    async with db.owner() as conn, conn.transaction():
        await conn.execute("UPDATE control.tenants SET created_at = %s WHERE id = %s", (created, tenant.id))


async def _usage(db: Database, tenant: Tenant, rows: list[tuple[str, date, int]]) -> None:
    async with db.owner() as conn, conn.transaction():
        for resource, day, value in rows:
            await conn.execute(
                "INSERT INTO control.tenant_resource_usage (tenant_id, resource, usage_date, usage_value) "
                "VALUES (%s, %s, %s, %s)",
                (tenant.id, resource, day, value),
            )


async def test_a_month_with_a_mid_month_plan_change_matches_the_hand_computed_invoice(
    db: Database, make_tenant: TenantFactory
) -> None:
    small, large = await _plans(db)
    tenant = await make_tenant(plan=small, timezone="Europe/Paris")
    await _backdate(db, tenant, datetime(2026, 10, 1, tzinfo=UTC))
    # Midnight of 16 November in Paris (UTC+1): the second half of the month is on the large plan.
    await change_tenant_plan(
        db, tenant.slug, large, actor="test", now=datetime(2026, 11, 15, 23, 0, tzinfo=UTC)
    )
    await _usage(db, tenant, [
        *(("cameras", date(2026, 11, d), 4) for d in range(1, 16)),
        *(("cameras", date(2026, 11, d), 8) for d in range(16, 31)),
        ("api_calls_per_day", date(2026, 10, 31), 5000),  # before the period: not billed
        ("api_calls_per_day", date(2026, 11, 3), 1234),
        ("api_calls_per_day", date(2026, 11, 20), 10001),
        ("api_calls_per_day", date(2026, 12, 1), 7000),  # after the period: not billed
        ("storage_bytes", date(2026, 10, 20), int(2.5 * GIB)),  # carried into November
    ])  # fmt: skip
    result = await run_billing(db, "2026-11", actor="test", tenant_slug=tenant.slug)
    assert len(result.created) == 1
    invoice = result.created[0]
    # Base: 29.99 * 15/30 = 14.995 -> 15.00; 299.99 * 15/30 = 149.995 -> 150.00.
    # Cameras (average): 4 * 15/30 = 2 camera-months * 5.00 = 10.00; 8 * 15/30 = 4 * 4.00 = 16.00.
    # API calls: 1234 * 0.001 = 1.234 -> 1.23; 10001 * 0.001 = 10.001 -> 10.00.
    # Storage: 2.5 GB * 15/30 = 1.25 GB-months * 0.10 = 0.125 -> 0.13, on each plan.
    amounts = sorted((li["plan"], li["resource"] or "base", li["amount"]) for li in invoice.line_items)
    assert amounts == sorted([
        (small, "base", "15.00"), (large, "base", "150.00"),
        (small, "cameras", "10.00"), (large, "cameras", "16.00"),
        (small, "api_calls", "1.23"), (large, "api_calls", "10.00"),
        (small, "storage_gb", "0.13"), (large, "storage_gb", "0.13"),
    ])  # fmt: skip
    assert (invoice.base_amount, invoice.usage_amount, invoice.total_amount) == (
        Decimal("165.00"), Decimal("37.49"), Decimal("202.49"),
    )  # fmt: skip
    assert (invoice.currency, invoice.period_start, invoice.period_end) == (
        "USD",
        date(2026, 11, 1),
        date(2026, 12, 1),
    )
    assert invoice.due_date == date(2026, 12, 15)
    assert isinstance(invoice.total_amount, Decimal)


def test_proration_weighs_a_dst_day_by_its_real_length() -> None:
    plans = {p: PlanTerms(p, Decimal("100.00"), "EUR", {}) for p in ("a", "b")}
    # October 2026 in Paris has 31 days, one of them 25 hours long (25 October): 745 hours.
    change = PlanChange(datetime(2026, 10, 25, 23, 0, tzinfo=UTC), "a", "b")  # midnight of 26 October
    draft = compute_invoice(
        period_start=date(2026, 10, 1), period_end=date(2026, 11, 1), tz="Europe/Paris", current_plan="b",
        changes=[change], plans=plans, service_start=datetime(2026, 1, 1, tzinfo=UTC), history={},
    )  # fmt: skip
    # a: 1 Oct 00:00 (UTC+2) to 26 Oct 00:00 (UTC+1) = 25 days + 1 hour = 601 h; b: 144 h.
    assert [li.amount for li in draft.lines] == [
        Decimal("80.67"),
        Decimal("19.33"),
    ]  # 100*601/745, 100*144/745
    assert draft.currency == "EUR"


async def test_parallel_and_repeated_runs_make_one_invoice_per_tenant_and_period(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenants = [await make_tenant() for _ in range(3)]
    for tenant in tenants:
        await _backdate(db, tenant, datetime(2026, 9, 1, tzinfo=UTC))
    slugs = {t.slug for t in tenants}
    runs = await asyncio.gather(
        *(run_billing(db, "2026-10", actor=f"run-{i}", tenant_slug=t.slug) for i in range(4) for t in tenants)
    )
    runs.append(await run_billing(db, "2026-10", actor="again", tenant_slug=tenants[0].slug))
    assert sum(len(r.created) for r in runs) == 3
    for tenant in tenants:
        invoices = await list_invoices(db, tenant_id=tenant.id)
        assert len(invoices) == 1
        assert invoices[0].total_amount == Decimal("99.99")  # standard plan, no usage
    assert slugs == {i.tenant for t in tenants for i in await list_invoices(db, tenant_id=t.id)}


async def test_an_open_period_and_a_quarter_not_yet_closed_are_not_billed(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant(timezone="America/New_York")
    await _backdate(db, tenant, datetime(2026, 9, 1, tzinfo=UTC))
    # 1 December 02:00 UTC is still 30 November in New York: November is not over there.
    early = await run_billing(
        db, "2026-11", actor="t", tenant_slug=tenant.slug, now=datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    )
    assert (early.created, early.still_open) == ([], 1)
    later = await run_billing(
        db, "2026-11", actor="t", tenant_slug=tenant.slug, now=datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    )
    assert len(later.created) == 1
    async with db.owner() as conn, conn.transaction():
        await conn.execute(
            "UPDATE control.tenants SET billing_cycle = 'quarterly' WHERE id = %s", (tenant.id,)
        )
    assert (await run_billing(db, "2026-10", actor="t", tenant_slug=tenant.slug)).not_due == 1


async def test_invoice_status_moves_only_along_the_state_machine(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    await _backdate(db, tenant, datetime(2026, 8, 1, tzinfo=UTC))
    (invoice,) = (await run_billing(db, "2026-08", actor="t", tenant_slug=tenant.slug)).created
    (second,) = (await run_billing(db, "2026-09", actor="t", tenant_slug=tenant.slug)).created
    assert invoice.status == "pending"
    await mark_overdue(db, now=datetime(2026, 9, 15, 12, tzinfo=UTC))  # due 15 September: not yet overdue
    assert (await get_invoice(db, invoice.id)).status == "pending"
    assert await mark_overdue(db, now=datetime(2026, 9, 16, 12, tzinfo=UTC)) >= 1
    assert (await get_invoice(db, invoice.id)).status == "overdue"
    assert (await get_invoice(db, second.id)).status == "pending"  # due 15 October
    paid = await set_invoice_status(db, invoice.id, "paid", actor="t")
    assert paid.status == "paid"
    with pytest.raises(Conflict, match="is paid; it cannot become cancelled"):
        await set_invoice_status(db, invoice.id, "cancelled", actor="t")
    with pytest.raises(Conflict, match="cannot become pending"):
        await set_invoice_status(db, second.id, "pending", actor="t")
    with pytest.raises(InvalidInput):
        await set_invoice_status(db, second.id, "refunded", actor="t")
    assert (await set_invoice_status(db, second.id, "cancelled", actor="t")).status == "cancelled"
    text = invoices_csv(await list_invoices(db, tenant_id=tenant.id))
    lines = text.splitlines()
    assert lines[0].startswith("id,tenant,billing_cycle,period_start")
    assert (
        f"{invoice.id},{tenant.slug},monthly,2026-08-01,2026-09-01,USD,99.99,0.00,99.99,paid,2026-09-15,"
        in text
    )
    assert len(lines) == 3
