"""``camcount billing ...``: billing runs, invoices, payments and CSV export."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from camcount.billing.cycles import Invoice, RunResult, list_invoices, run_billing, set_invoice_status
from camcount.billing.export import invoices_csv
from camcount.cli.common import actor, console, fail, print_json, print_table, run
from camcount.db.pools import Database
from camcount.tenancy.lifecycle import require_tenant

app = typer.Typer(help="Billing cycles and invoices (amounts are exact decimals).", no_args_is_help=True)


@app.command("run")
def billing_run(
    period: Annotated[str, typer.Option(help="The month that closes the cycle, e.g. 2026-11.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Invoice every billable tenant for the period; running it again creates nothing twice."""
    result: RunResult = run(lambda db: run_billing(db, period, actor=actor(), tenant_slug=tenant))
    if as_json:
        print_json(result.as_dict())
        return
    for inv in result.created:
        console.print(f"invoice {inv.id}: {inv.tenant} {inv.period_start}..{inv.period_end} "
                      f"{inv.total_amount} {inv.currency}", highlight=False)  # fmt: skip
    console.print(f"{len(result.created)} invoice(s) created, {result.existing} already invoiced, "
                  f"{result.not_due} not closing this month, {result.still_open} period(s) not over yet")  # fmt: skip


@app.command("invoices")
def billing_invoices(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, paid, overdue or cancelled.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Write CSV to standard output.")] = False,
    lines: Annotated[bool, typer.Option("--lines", help="With --csv: one row per line item.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List invoices."""

    async def action(db: Database) -> list[Invoice]:
        found: list[Invoice] = []
        after = 0
        while True:  # every page, by id
            page = await list_invoices(db, tenant_slug=tenant, status=status, after_id=after)
            found.extend(page)
            if len(page) < 500:
                return found
            after = page[-1].id

    invoices = run(action)
    if csv:
        sys.stdout.write(invoices_csv(invoices, lines=lines))
    elif as_json:
        print_json([i.as_dict() for i in invoices])
    else:
        print_table("invoices", ("id", "tenant", "period", "base", "usage", "total", "currency", "status", "due"),
                    ((i.id, i.tenant, f"{i.period_start}..{i.period_end}", i.base_amount, i.usage_amount,
                      i.total_amount, i.currency, i.status, i.due_date) for i in invoices))  # fmt: skip


@app.command("mark")
def billing_mark(slug: str, invoice_id: int, status: str) -> None:
    """Mark an invoice paid or cancelled (pending -> paid|overdue|cancelled, overdue -> paid|cancelled)."""
    if status not in ("paid", "cancelled", "overdue"):
        fail("status must be paid, cancelled or overdue")

    async def action(db: Database) -> Invoice:
        async with db.owner() as conn:
            await require_tenant(conn, slug)
        return await set_invoice_status(db, invoice_id, status, actor=actor(), tenant_slug=slug)

    invoice = run(action)
    console.print(f"invoice {invoice.id} of {invoice.tenant} is {invoice.status}", highlight=False)
