"""Billing runs: one invoice per billable tenant and period, however often and however concurrently run.

``run_billing(db, year, month)`` bills every tenant whose billing cycle closes with that month
(monthly: every month; quarterly: March, June, September, December; yearly: December). Each
invoice is computed from the period's usage history and plan changes
(:mod:`camcount.billing.invoices`) and inserted with ``ON CONFLICT DO NOTHING`` on
``UNIQUE (tenant_id, period_start, period_end)``: a second or concurrent run inserts nothing.

Billable: a tenant that is active or suspended and existed before the period ended; inactive
(treated as gone) and provisioning tenants are not billed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from camcount.billing.invoices import (
    PRICED_RESOURCES,
    STATUSES,
    InvoiceDraft,
    PlanChange,
    PlanTerms,
    allowed_sources,
    compute_invoice,
)
from camcount.db.pools import Database
from camcount.errors import Conflict, InvalidInput, NotFound
from camcount.limits.periods import billing_period, local_date, local_midnight, parse_month
from camcount.tenancy import audit
from camcount.tenancy.models import TENANT_COLUMNS, Tenant, tenant_from_row

GAUGE_HISTORY = [h for h, kind, _ in PRICED_RESOURCES.values() if kind == "gauge"]


@dataclass(frozen=True)
class Invoice:
    id: int
    tenant: str
    tenant_id: int | None
    billing_cycle: str
    period_start: date
    period_end: date
    currency: str
    base_amount: Decimal
    usage_amount: Decimal
    total_amount: Decimal
    line_items: list[dict[str, Any]]
    status: str
    due_date: date | None
    issued_at: datetime

    def as_dict(self, *, lines: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "tenant": self.tenant,
            "billing_cycle": self.billing_cycle,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "currency": self.currency,
            "base_amount": str(self.base_amount),
            "usage_amount": str(self.usage_amount),
            "total_amount": str(self.total_amount),
            "status": self.status,
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "issued_at": self.issued_at.isoformat(),
        }
        if lines:
            data["line_items"] = self.line_items
        return data


_INVOICE_COLUMNS = (
    "id, tenant_slug, tenant_id, billing_cycle, period_start, period_end, currency, base_amount, "
    "usage_amount, total_amount, line_items, status, due_date, issued_at"
)


async def load_plan_terms(conn: AsyncConnection) -> dict[str, PlanTerms]:
    cur = await conn.execute("SELECT code, base_price, currency FROM control.plans")
    plans = {code: (Decimal(price), currency) for code, price, currency in await cur.fetchall()}
    cur = await conn.execute("SELECT plan, resource, unit_price FROM control.plan_prices")
    prices: dict[str, dict[str, Decimal]] = {}
    for plan, resource, price in await cur.fetchall():
        prices.setdefault(plan, {})[resource] = Decimal(price)
    return {code: PlanTerms(code, p, c, prices.get(code, {})) for code, (p, c) in plans.items()}


async def draft_for(
    conn: AsyncConnection, tenant: Tenant, start: date, end: date, plans: dict[str, PlanTerms]
) -> InvoiceDraft:
    cur = await conn.execute(
        "SELECT changed_at, from_plan, to_plan FROM control.tenant_plan_history WHERE tenant_id = %s "
        "ORDER BY changed_at",
        (tenant.id,),
    )
    changes = [PlanChange(*row) for row in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT resource, usage_date, usage_value FROM control.tenant_resource_usage "
        "WHERE tenant_id = %s AND usage_date >= %s AND usage_date < %s",
        (tenant.id, start, end),
    )
    history: dict[str, dict[date, int]] = {}
    for resource, day, value in await cur.fetchall():
        history.setdefault(resource, {})[day] = int(value)
    cur = await conn.execute(
        """
        SELECT DISTINCT ON (resource) resource, usage_value FROM control.tenant_resource_usage
        WHERE tenant_id = %s AND usage_date < %s AND resource = ANY(%s)
        ORDER BY resource, usage_date DESC
        """,
        (tenant.id, start, GAUGE_HISTORY),
    )
    carried = {resource: int(value) for resource, value in await cur.fetchall()}
    assert tenant.created_at is not None
    return compute_invoice(
        period_start=start, period_end=end, tz=tenant.timezone, current_plan=tenant.plan, changes=changes,
        plans=plans, service_start=tenant.created_at, history=history, carried=carried,
    )  # fmt: skip


@dataclass(frozen=True)
class RunResult:
    period: str
    created: list[Invoice]
    existing: int
    not_due: int
    still_open: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "created": [i.as_dict(lines=False) for i in self.created],
            "already_invoiced": self.existing,
            "cycle_not_closing": self.not_due,
            "period_not_over": self.still_open,
        }


async def run_billing(
    db: Database, period: str, *, actor: str, tenant_slug: str | None = None, now: datetime | None = None
) -> RunResult:
    """Invoice every billable tenant whose cycle closes with month ``period`` (YYYY-MM).

    A period that has not ended yet in the tenant's time zone is skipped (its usage is not final).
    """
    year, month = parse_month(period)
    now = now or datetime.now(UTC)
    created: list[Invoice] = []
    existing = not_due = still_open = 0
    async with db.owner() as conn:
        plans = await load_plan_terms(conn)
        cur = await conn.execute(
            f"SELECT {TENANT_COLUMNS} FROM control.tenants WHERE status IN ('active', 'suspended') "  # noqa: S608
            "AND (%s::text IS NULL OR slug = %s) ORDER BY id",
            (tenant_slug, tenant_slug),
        )
        tenants = [tenant_from_row(row) for row in await cur.fetchall()]
    if tenant_slug is not None and not tenants:
        raise NotFound(f"no billable tenant {tenant_slug[:60]!r}")
    for tenant in tenants:
        bounds = billing_period(tenant.billing_cycle, year, month)
        if bounds is None:
            not_due += 1
            continue
        start, end = bounds
        assert tenant.created_at is not None
        if tenant.created_at >= local_midnight(end, tenant.timezone):
            continue  # did not exist in this period
        if now < local_midnight(end, tenant.timezone):
            still_open += 1
            continue
        async with db.owner() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT 1 FROM control.tenant_billing WHERE tenant_id = %s AND period_start = %s AND period_end = %s",
                (tenant.id, start, end),
            )
            if await cur.fetchone() is not None:
                existing += 1
                continue
            draft = await draft_for(conn, tenant, start, end, plans)
            invoice = await _insert(conn, tenant, draft)
            if invoice is None:
                existing += 1  # a concurrent run inserted it first
                continue
            await audit.record(
                conn, actor=actor, action="billing.invoice", tenant_id=tenant.id, tenant_slug=tenant.slug,
                after=invoice.as_dict(lines=False),
            )  # fmt: skip
            created.append(invoice)
    return RunResult(period, created, existing, not_due, still_open)


async def _insert(conn: AsyncConnection, tenant: Tenant, draft: InvoiceDraft) -> Invoice | None:
    cur = await conn.execute(
        f"""
        INSERT INTO control.tenant_billing (tenant_id, tenant_slug, billing_cycle, period_start, period_end,
                                            currency, base_amount, usage_amount, total_amount, line_items,
                                            due_date)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (tenant_id, period_start, period_end) DO NOTHING
        RETURNING {_INVOICE_COLUMNS}
        """.encode(),  # noqa: S608 (constant columns)
        (
            tenant.id, tenant.slug, tenant.billing_cycle, draft.period_start, draft.period_end, draft.currency,
            draft.base_amount, draft.usage_amount, draft.total_amount,
            Jsonb([line.as_dict() for line in draft.lines]), draft.due_date,
        ),
    )  # fmt: skip
    row = await cur.fetchone()
    return Invoice(*row) if row else None


async def list_invoices(
    db: Database, *, tenant_id: int | None = None, tenant_slug: str | None = None, status: str | None = None,
    limit: int = 500, after_id: int = 0,
) -> list[Invoice]:  # fmt: skip
    """Invoices, oldest first (keyset pagination by id); filtered by tenant and status."""
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"{status[:20]!r} is not one of {', '.join(STATUSES)}")
    async with db.app_control() as conn:  # a read the application role is granted
        cur = await conn.execute(
            f"""
            SELECT {_INVOICE_COLUMNS} FROM control.tenant_billing
            WHERE (%(tid)s::bigint IS NULL OR tenant_id = %(tid)s)
              AND (%(slug)s::text IS NULL OR tenant_slug = %(slug)s)
              AND (%(status)s::text IS NULL OR status = %(status)s) AND id > %(after)s
            ORDER BY id LIMIT %(limit)s
            """.encode(),  # noqa: S608 (constant columns)
            {"tid": tenant_id, "slug": tenant_slug, "status": status, "after": after_id, "limit": limit},
        )
        return [Invoice(*row) for row in await cur.fetchall()]


async def get_invoice(db: Database, invoice_id: int, *, tenant_id: int | None = None) -> Invoice:
    async with db.app_control() as conn:
        cur = await conn.execute(
            f"SELECT {_INVOICE_COLUMNS} FROM control.tenant_billing "  # noqa: S608
            "WHERE id = %s AND (%s::bigint IS NULL OR tenant_id = %s)",
            (invoice_id, tenant_id, tenant_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no invoice {invoice_id}")
    return Invoice(*row)


async def set_invoice_status(
    db: Database, invoice_id: int, status: str, *, actor: str, tenant_slug: str | None = None
) -> Invoice:
    """Move an invoice along the state machine in one conditional UPDATE; other moves are refused."""
    sources = allowed_sources(status)
    async with db.owner() as conn, conn.transaction():
        cur = await conn.execute(
            f"""
            UPDATE control.tenant_billing SET status = %s, updated_at = now()
            WHERE id = %s AND status = ANY(%s) AND (%s::text IS NULL OR tenant_slug = %s)
            RETURNING {_INVOICE_COLUMNS}
            """.encode(),  # noqa: S608 (constant columns)
            (status, invoice_id, sources, tenant_slug, tenant_slug),
        )
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute(
                "SELECT status FROM control.tenant_billing WHERE id = %s AND (%s::text IS NULL OR tenant_slug = %s)",
                (invoice_id, tenant_slug, tenant_slug),
            )
            found = await cur.fetchone()
            if found is None:
                raise NotFound(f"no invoice {invoice_id}")
            raise Conflict(f"invoice {invoice_id} is {found[0]}; it cannot become {status}")
        invoice = Invoice(*row)
        await audit.record(
            conn, actor=actor, action=f"billing.invoice_{status}", tenant_id=invoice.tenant_id,
            tenant_slug=invoice.tenant, after={"invoice": invoice_id, "status": status},
        )  # fmt: skip
        return invoice


async def mark_overdue(db: Database, *, now: datetime) -> int:
    """Scheduled: pending invoices past their due date (in the tenant's zone) become overdue."""
    async with db.owner() as conn, conn.transaction():
        cur = await conn.execute(
            """
            SELECT b.id, t.timezone, b.due_date FROM control.tenant_billing b
            JOIN control.tenants t ON t.id = b.tenant_id
            WHERE b.status = 'pending' AND b.due_date < %s
            """,
            (now.date() + timedelta(days=1),),
        )
        due = [i for i, tz, d in await cur.fetchall() if d < local_date(now, tz)]
        if due:
            await conn.execute(
                "UPDATE control.tenant_billing SET status = 'overdue', updated_at = now() "
                "WHERE id = ANY(%s) AND status = 'pending'",
                (due,),
            )
        return len(due)


def previous_month(now: datetime) -> str:
    """The month before ``now``'s UTC month; a day late in zones behind UTC, billed by the next run."""
    last = now.astimezone(UTC).date().replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


async def billing_cycle_job(db: Database, *, now: datetime) -> dict[str, Any]:
    """Scheduled (daily is fine: idempotent): bill last month's closing cycles, mark overdue invoices."""
    result = await run_billing(db, previous_month(now), actor="scheduler", now=now)
    return {
        "period": result.period,
        "created": len(result.created),
        "overdue": await mark_overdue(db, now=now),
    }
