"""Invoices as CSV: one row per invoice (or per line item), amounts as exact decimal strings."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from camcount.billing.cycles import Invoice

INVOICE_COLUMNS = (
    "id", "tenant", "billing_cycle", "period_start", "period_end_exclusive", "currency", "base_amount",
    "usage_amount", "total_amount", "status", "due_date", "issued_at",
)  # fmt: skip
LINE_COLUMNS = ("invoice_id", "tenant", "kind", "description", "plan", "resource", "quantity", "unit",
                "unit_price", "amount", "currency")  # fmt: skip


def _cell(value: object) -> str:
    """Text as is, except that a leading formula character is neutralised (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def invoices_csv(invoices: Iterable[Invoice], *, lines: bool = False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if lines:
        writer.writerow(LINE_COLUMNS)
        for inv in invoices:
            for item in inv.line_items:
                writer.writerow([_cell(v) for v in (
                    inv.id, inv.tenant, item["kind"], item["description"], item["plan"], item["resource"],
                    item["quantity"], item["unit"], item["unit_price"], item["amount"], inv.currency,
                )])  # fmt: skip
        return out.getvalue()
    writer.writerow(INVOICE_COLUMNS)
    for inv in invoices:
        writer.writerow([_cell(v) for v in (
            inv.id, inv.tenant, inv.billing_cycle, inv.period_start, inv.period_end, inv.currency, inv.base_amount,
            inv.usage_amount, inv.total_amount, inv.status, inv.due_date, inv.issued_at.isoformat(),
        )])  # fmt: skip
    return out.getvalue()
