"""Invoice computation (pure, Decimal only) and the invoice state machine.

Rules (docs/limits-and-billing.md explains them with an example):

- A billing period is ``[start, end)`` in local dates of the tenant's time zone; its instants are
  the local midnights. Base prices and gauge prices are per month; a quarter is 3 months, a year 12.
- **Proration**: the period is cut where the plan changed (``control.tenant_plan_history``) and
  where service started (the tenant's creation). Each piece pays its plan's base price times its
  share of the period's duration, measured in seconds (so a 23- or 25-hour DST day weighs what it
  lasted).
- **Counters** (API calls, events): the calls of each local day in the period, priced at the plan
  in force at the start of that day.
- **Gauges** (cameras, users, sites, device keys, storage): the **average** of daily values over
  the period's days, in unit-months (a day's value is that day's measured peak; a day without a
  measurement carries the previous value forward; before the first one it is 0). Average, not
  peak: a tenant that briefly peaks pays for what it held, and a mid-period change is weighed by
  days, consistent with proration. Each day is priced at the plan in force at its start.
- Every line's amount is rounded half-up to cents; the totals are sums of rounded lines.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from camcount.errors import Conflict, InvalidInput
from camcount.limits.periods import local_date, local_midnight, months_in

CENT = Decimal("0.01")
QUANTITY = Decimal("0.0001")
GIB = 1024**3
PAYMENT_TERMS_DAYS = 14

# price resource -> (history resource, kind, unit)
PRICED_RESOURCES: dict[str, tuple[str, str, str]] = {
    "api_calls": ("api_calls_per_day", "counter", "call"),
    "events": ("events_per_month", "counter", "event"),
    "cameras": ("cameras", "gauge", "camera-month"),
    "users": ("users", "gauge", "user-month"),
    "sites": ("sites", "gauge", "site-month"),
    "api_keys": ("api_keys", "gauge", "key-month"),
    "storage_gb": ("storage_bytes", "gauge", "GB-month"),
}

# The invoice state machine: pending -> paid | overdue | cancelled; overdue -> paid | cancelled.
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"paid", "overdue", "cancelled"}),
    "overdue": frozenset({"paid", "cancelled"}),
    "paid": frozenset(),
    "cancelled": frozenset(),
}
STATUSES = tuple(TRANSITIONS)


def allowed_sources(target: str) -> list[str]:
    """The statuses an invoice may move to ``target`` from."""
    if target not in TRANSITIONS:
        raise InvalidInput("status", f"{target[:20]!r} is not one of {', '.join(STATUSES)}")
    return sorted(source for source, targets in TRANSITIONS.items() if target in targets)


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PlanTerms:
    code: str
    base_price: Decimal
    currency: str
    prices: Mapping[str, Decimal]


@dataclass(frozen=True)
class PlanChange:
    changed_at: datetime
    from_plan: str
    to_plan: str


@dataclass(frozen=True)
class LineItem:
    kind: str  # base | usage
    description: str
    plan: str
    resource: str | None
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "description": self.description,
            "plan": self.plan,
            "resource": self.resource,
            "quantity": str(self.quantity),
            "unit": self.unit,
            "unit_price": str(self.unit_price),
            "amount": str(self.amount),
        }


@dataclass(frozen=True)
class InvoiceDraft:
    period_start: date
    period_end: date  # exclusive
    currency: str
    lines: tuple[LineItem, ...]
    due_date: date

    @property
    def base_amount(self) -> Decimal:
        return sum((li.amount for li in self.lines if li.kind == "base"), Decimal("0.00"))

    @property
    def usage_amount(self) -> Decimal:
        return sum((li.amount for li in self.lines if li.kind == "usage"), Decimal("0.00"))

    @property
    def total_amount(self) -> Decimal:
        return self.base_amount + self.usage_amount


def plan_at(moment: datetime, current_plan: str, changes: Sequence[PlanChange]) -> str:
    """The plan in force at ``moment``: the from_plan of the first later change, else the current one."""
    for change in sorted(changes, key=lambda c: c.changed_at):
        if change.changed_at > moment:
            return change.from_plan
    return current_plan


def plan_segments(
    start: datetime, end: datetime, current_plan: str, changes: Sequence[PlanChange]
) -> list[tuple[str, datetime, datetime]]:
    """``[start, end)`` cut at each plan change inside it, with the plan of each piece."""
    cuts = sorted({c.changed_at for c in changes if start < c.changed_at < end})
    bounds = [start, *cuts, end]
    pieces = [(plan_at(a, current_plan, changes), a, b) for a, b in itertools.pairwise(bounds)]
    merged: list[tuple[str, datetime, datetime]] = []
    for plan, a, b in pieces:
        if merged and merged[-1][0] == plan:
            merged[-1] = (plan, merged[-1][1], b)
        else:
            merged.append((plan, a, b))
    return merged


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def compute_invoice(
    *,
    period_start: date,
    period_end: date,
    tz: str,
    current_plan: str,
    changes: Sequence[PlanChange],
    plans: Mapping[str, PlanTerms],
    service_start: datetime,
    history: Mapping[str, Mapping[date, int]],
    carried: Mapping[str, int] | None = None,
) -> InvoiceDraft:
    """The invoice for one tenant and period.

    ``history``: per history resource, the daily values inside the period; ``carried``: per gauge
    resource, the last daily value before the period (carried forward into it).
    """
    carried = carried or {}
    start_at, end_at = local_midnight(period_start, tz), local_midnight(period_end, tz)
    months = months_in(period_start, period_end)
    total_seconds = Decimal((end_at - start_at).total_seconds())
    lines: list[LineItem] = []
    served_from = max(start_at, service_start)

    currencies = set()
    for plan, a, b in plan_segments(served_from, end_at, current_plan, changes):
        terms = plans[plan]
        currencies.add(terms.currency)
        share = Decimal((b - a).total_seconds()) / total_seconds
        quantity = share * months
        lines.append(
            LineItem(
                "base", f"{plan} plan, {a.date().isoformat()} to {b.date().isoformat()}", plan, None,
                quantity.quantize(QUANTITY, rounding=ROUND_HALF_UP), "month", terms.base_price,
                cents(terms.base_price * quantity),
            )
        )  # fmt: skip

    days = _days(period_start, period_end)
    day_plan = {d: plan_at(local_midnight(d, tz), current_plan, changes) for d in days}
    first_day = max(period_start, local_date(service_start, tz))
    for price_resource, (history_resource, kind, unit) in PRICED_RESOURCES.items():
        values = history.get(history_resource, {})
        per_plan: dict[str, Decimal] = {}
        if kind == "counter":
            for d in days:
                if values.get(d):
                    per_plan[day_plan[d]] = per_plan.get(day_plan[d], Decimal(0)) + values[d]
        else:
            last = Decimal(carried.get(history_resource, 0))
            for d in days:
                if d in values:
                    last = Decimal(values[d])
                if d < first_day:
                    continue
                value = last / GIB if history_resource == "storage_bytes" else last
                per_plan[day_plan[d]] = per_plan.get(day_plan[d], Decimal(0)) + value
            per_plan = {p: total * months / len(days) for p, total in per_plan.items()}
        for plan, quantity in per_plan.items():
            price = plans[plan].prices.get(price_resource)
            if price is None or quantity == 0:
                continue
            lines.append(
                LineItem(
                    "usage", f"{price_resource} ({'average' if kind == 'gauge' else 'total'})", plan,
                    price_resource, quantity.quantize(QUANTITY, rounding=ROUND_HALF_UP), unit, price,
                    cents(quantity * price),
                )
            )  # fmt: skip
    if len(currencies) > 1:
        raise Conflict(f"plans in one period use different currencies: {sorted(currencies)}")
    currency = currencies.pop() if currencies else plans[current_plan].currency
    return InvoiceDraft(
        period_start, period_end, currency, tuple(lines), period_end + timedelta(days=PAYMENT_TERMS_DAYS)
    )
