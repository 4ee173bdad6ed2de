"""Plans as data, per-tenant overrides and plan changes: operator actions, all audited.

A tenant's effective limits live in ``control.tenant_limits``: copied from its plan, except rows
with ``is_override``, which the operator set for that tenant alone. Changing a plan's limit updates
every tenant on that plan that has no override; changing a tenant's plan recomputes its
non-overridden limits and records the change time in ``control.tenant_plan_history`` (billing
prorates from it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from psycopg import AsyncConnection, errors

from camcount.db.pools import Database
from camcount.errors import Conflict, InvalidInput, NotFound
from camcount.limits.periods import ResetPeriod
from camcount.tenancy import audit
from camcount.tenancy.lifecycle import lock_tenant_slug, require_tenant
from camcount.tenancy.validation import validate_name

PLAN_CODE_RE = re.compile(r"[a-z][a-z0-9_-]{1,31}")
RESOURCE_RE = re.compile(r"[a-z][a-z0-9_]{1,47}")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
MAX_LIMIT = 10**15
MAX_PRICE = Decimal("99999999.9999")

# Gauges are measured (how many, how big); quotas are counted per period.
GAUGES = ("cameras", "users", "sites", "api_keys", "storage_gb")
QUOTAS = {"api_calls_per_day": ResetPeriod.DAILY, "events_per_month": ResetPeriod.MONTHLY}
# Request rates come from the plan's columns; a tenant may override them like any limit.
RATES = ("requests_per_second", "device_requests_per_second")


@dataclass(frozen=True)
class Plan:
    code: str
    name: str
    base_price: Decimal
    currency: str
    requests_per_second: int
    device_requests_per_second: int
    retention_days: int
    is_active: bool
    limits: dict[str, int] = field(default_factory=dict)
    reset_periods: dict[str, str | None] = field(default_factory=dict)
    prices: dict[str, Decimal] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "base_price": str(self.base_price),
            "currency": self.currency,
            "requests_per_second": self.requests_per_second,
            "device_requests_per_second": self.device_requests_per_second,
            "retention_days": self.retention_days,
            "is_active": self.is_active,
            "limits": {
                r: {"limit": v, "reset_period": self.reset_periods.get(r)} for r, v in self.limits.items()
            },
            "prices": {r: str(p) for r, p in self.prices.items()},
        }


# -- validation ---------------------------------------------------------------------------------


def validate_plan_code(code: str) -> str:
    if not PLAN_CODE_RE.fullmatch(code):
        raise InvalidInput("plan", f"{code[:40]!r} must be 2-32 lowercase letters, digits, '_' or '-'")
    return code


def validate_resource(resource: str) -> str:
    if not RESOURCE_RE.fullmatch(resource):
        raise InvalidInput("resource", f"{resource[:40]!r} must be 2-48 lowercase letters, digits or '_'")
    return resource


def validate_limit(value: int | str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput("limit", f"{str(value)[:40]!r} is not a whole number") from None
    if not 0 <= number <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 0 and {MAX_LIMIT}")
    return number


def validate_money(value: Decimal | str | int, field_name: str = "price", places: int = 2) -> Decimal:
    """A non-negative amount with at most ``places`` decimals (floats are refused: money is Decimal)."""
    if isinstance(value, (float, bool)):
        raise InvalidInput(field_name, "pass a decimal string, not a float")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(field_name, f"{str(value)[:40]!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_PRICE:
        raise InvalidInput(field_name, f"must be between 0 and {MAX_PRICE}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise InvalidInput(field_name, f"at most {places} decimal places")
    return amount


def validate_rate(value: int, field_name: str) -> int:
    if not 1 <= value <= 1_000_000:
        raise InvalidInput(field_name, "must be between 1 and 1000000 requests per second")
    return value


def validate_reset_period(value: str | None) -> str | None:
    if value is None or value in ("", "none"):
        return None
    if value not in [p.value for p in ResetPeriod]:
        raise InvalidInput(
            "reset_period", f"{value[:20]!r} is not one of daily, weekly, monthly, yearly, none"
        )
    return value


# -- reading ------------------------------------------------------------------------------------

_PLAN_COLUMNS = (
    "code, name, base_price, currency, requests_per_second, device_requests_per_second, retention_days, "
    "is_active"
)


async def list_plans(conn: AsyncConnection, *, include_inactive: bool = True) -> list[Plan]:
    cur = await conn.execute(
        f"SELECT {_PLAN_COLUMNS} FROM control.plans WHERE is_active OR %s ORDER BY base_price, code",  # noqa: S608
        (include_inactive,),
    )
    plans = [Plan(*row) for row in await cur.fetchall()]
    cur = await conn.execute("SELECT plan, resource, limit_value, reset_period FROM control.plan_limits")
    limits: dict[str, dict[str, int]] = {}
    periods: dict[str, dict[str, str | None]] = {}
    for plan, resource, value, period in await cur.fetchall():
        limits.setdefault(plan, {})[resource] = int(value)
        periods.setdefault(plan, {})[resource] = period
    cur = await conn.execute("SELECT plan, resource, unit_price FROM control.plan_prices")
    prices: dict[str, dict[str, Decimal]] = {}
    for plan, resource, price in await cur.fetchall():
        prices.setdefault(plan, {})[resource] = Decimal(price)
    return [
        Plan(
            p.code,
            p.name,
            Decimal(p.base_price),
            p.currency,
            p.requests_per_second,
            p.device_requests_per_second,
            p.retention_days,
            p.is_active,
            dict(sorted(limits.get(p.code, {}).items())),
            periods.get(p.code, {}),
            dict(sorted(prices.get(p.code, {}).items())),
        )
        for p in plans
    ]


async def get_plan(conn: AsyncConnection, code: str) -> Plan:
    for plan in await list_plans(conn):
        if plan.code == code:
            return plan
    raise NotFound(f"no plan {code[:40]!r}")


# -- plan actions -------------------------------------------------------------------------------


async def create_plan(
    db: Database,
    code: str,
    *,
    name: str,
    base_price: Decimal | str,
    requests_per_second: int,
    device_requests_per_second: int = 5,
    retention_days: int = 365,
    currency: str = "USD",
    copy_from: str | None = None,
    actor: str,
) -> Plan:
    """Add a plan; ``copy_from`` copies another plan's limits and prices as a starting point."""
    code = validate_plan_code(code)
    if not CURRENCY_RE.fullmatch(currency):
        raise InvalidInput("currency", f"{currency[:10]!r} is not an ISO 4217 code like USD")
    if not 1 <= retention_days <= 36500:
        raise InvalidInput("retention_days", "must be between 1 and 36500")
    values = (
        code, validate_name(name), validate_money(base_price, "base_price"), currency,
        validate_rate(requests_per_second, "requests_per_second"),
        validate_rate(device_requests_per_second, "device_requests_per_second"), retention_days,
    )  # fmt: skip
    async with db.owner() as conn, conn.transaction():
        try:
            await conn.execute(
                """
                INSERT INTO control.plans (code, name, base_price, currency, requests_per_second,
                                           device_requests_per_second, retention_days)
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                """,
                values,
            )
        except errors.UniqueViolation:
            raise Conflict(f"plan {code!r} already exists") from None
        if copy_from is not None:
            await get_plan(conn, copy_from)
            await conn.execute(
                """
                INSERT INTO control.plan_limits (plan, resource, limit_value, reset_period)
                SELECT %s, resource, limit_value, reset_period FROM control.plan_limits WHERE plan = %s
                """,
                (code, copy_from),
            )
            await conn.execute(
                """
                INSERT INTO control.plan_prices (plan, resource, unit_price)
                SELECT %s, resource, unit_price FROM control.plan_prices WHERE plan = %s
                """,
                (code, copy_from),
            )
        plan = await get_plan(conn, code)
        await audit.record(
            conn, actor=actor, action="plan.create", tenant_id=None, tenant_slug=None, after=plan.as_dict()
        )
        return plan


async def update_plan(
    db: Database,
    code: str,
    *,
    name: str | None = None,
    base_price: Decimal | str | None = None,
    requests_per_second: int | None = None,
    device_requests_per_second: int | None = None,
    retention_days: int | None = None,
    is_active: bool | None = None,
    actor: str,
) -> Plan:
    """Change a plan's name, price, rates, retention or availability for new tenants."""
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = validate_name(name)
    if base_price is not None:
        changes["base_price"] = validate_money(base_price, "base_price")
    if requests_per_second is not None:
        changes["requests_per_second"] = validate_rate(requests_per_second, "requests_per_second")
    if device_requests_per_second is not None:
        changes["device_requests_per_second"] = validate_rate(
            device_requests_per_second, "device_requests_per_second"
        )
    if retention_days is not None:
        if not 1 <= retention_days <= 36500:
            raise InvalidInput("retention_days", "must be between 1 and 36500")
        changes["retention_days"] = retention_days
    if is_active is not None:
        changes["is_active"] = is_active
    if not changes:
        raise InvalidInput("plan", "nothing to change")
    async with db.owner() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM control.plans WHERE code = %s FOR UPDATE", (code,))
        before = await get_plan(conn, code)
        # Column names come from the fixed keys above, never from input.
        for column, value in changes.items():
            await conn.execute(
                f"UPDATE control.plans SET {column} = %s, updated_at = now() WHERE code = %s".encode(),  # noqa: S608
                (value, code),
            )
        after = await get_plan(conn, code)
        await audit.record(
            conn, actor=actor, action="plan.update", tenant_id=None, tenant_slug=None,
            before=before.as_dict(), after=after.as_dict(),
        )  # fmt: skip
        return after


async def set_plan_limit(
    db: Database, code: str, resource: str, value: int | str, *, reset_period: str | None = None, actor: str
) -> Plan:
    """Set a plan's limit; every tenant on the plan without an override gets it at once."""
    resource = validate_resource(resource)
    limit = validate_limit(value)
    period = validate_reset_period(reset_period) if reset_period is not None else QUOTAS.get(resource)
    async with db.owner() as conn, conn.transaction():
        before = await get_plan(conn, code)
        await conn.execute(
            """
            INSERT INTO control.plan_limits (plan, resource, limit_value, reset_period) VALUES (%s, %s, %s, %s)
            ON CONFLICT (plan, resource) DO UPDATE SET limit_value = EXCLUDED.limit_value,
                                                       reset_period = EXCLUDED.reset_period
            """,
            (code, resource, limit, period),
        )
        await conn.execute(
            """
            INSERT INTO control.tenant_limits (tenant_id, resource, limit_value, reset_period)
            SELECT id, %s, %s, %s FROM control.tenants WHERE plan = %s
            ON CONFLICT (tenant_id, resource) DO UPDATE
                SET limit_value = EXCLUDED.limit_value, reset_period = EXCLUDED.reset_period, updated_at = now()
                WHERE NOT control.tenant_limits.is_override
            """,
            (resource, limit, period, code),
        )
        after = await get_plan(conn, code)
        await audit.record(
            conn, actor=actor, action="plan.set_limit", tenant_id=None, tenant_slug=None,
            before={"plan": code, resource: before.limits.get(resource)},
            after={"plan": code, resource: limit, "reset_period": period},
        )  # fmt: skip
        return after


async def set_plan_price(db: Database, code: str, resource: str, price: Decimal | str, *, actor: str) -> Plan:
    """Set a plan's usage price per unit of a resource (storage_gb, api_calls, events, cameras, users)."""
    resource = validate_resource(resource)
    amount = validate_money(price, "price", places=4)
    async with db.owner() as conn, conn.transaction():
        before = await get_plan(conn, code)
        await conn.execute(
            """
            INSERT INTO control.plan_prices (plan, resource, unit_price) VALUES (%s, %s, %s)
            ON CONFLICT (plan, resource) DO UPDATE SET unit_price = EXCLUDED.unit_price
            """,
            (code, resource, amount),
        )
        after = await get_plan(conn, code)
        await audit.record(
            conn, actor=actor, action="plan.set_price", tenant_id=None, tenant_slug=None,
            before={"plan": code, resource: str(before.prices[resource]) if resource in before.prices else None},
            after={"plan": code, resource: str(amount)},
        )  # fmt: skip
        return after


# -- tenant actions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantLimit:
    resource: str
    limit: int
    is_override: bool
    reset_period: str | None
    current_usage: int
    period_start: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "limit": self.limit,
            "is_override": self.is_override,
            "reset_period": self.reset_period,
            "current_usage": self.current_usage,
            "period_start": self.period_start.isoformat() if self.period_start else None,
        }


async def tenant_limits(conn: AsyncConnection, tenant_id: int) -> list[TenantLimit]:
    cur = await conn.execute(
        """
        SELECT resource, limit_value, is_override, reset_period, current_usage, period_start
        FROM control.tenant_limits WHERE tenant_id = %s ORDER BY resource
        """,
        (tenant_id,),
    )
    return [TenantLimit(*row) for row in await cur.fetchall()]


async def set_tenant_limit(
    db: Database, slug: str, resource: str, value: int | str, *, reset_period: str | None = None, actor: str
) -> list[TenantLimit]:
    """Override one limit for one tenant (kept across plan changes until unset)."""
    resource = validate_resource(resource)
    limit = validate_limit(value)
    async with db.owner() as conn, conn.transaction():
        await lock_tenant_slug(conn, slug)
        tenant = await require_tenant(conn, slug)
        cur = await conn.execute(
            "SELECT reset_period FROM control.plan_limits WHERE plan = %s AND resource = %s",
            (tenant.plan, resource),
        )
        row = await cur.fetchone()
        if row is None and resource not in QUOTAS and resource not in RATES:
            cur = await conn.execute(
                "SELECT 1 FROM control.plan_limits WHERE resource = %s LIMIT 1", (resource,)
            )
            if await cur.fetchone() is None:
                # A typo would otherwise become a limit that nothing enforces.
                raise InvalidInput("resource", f"{resource!r} is not a resource any plan limits")
        period = (
            validate_reset_period(reset_period)
            if reset_period is not None
            else (row[0] if row else QUOTAS.get(resource))
        )
        before = {x.resource: x.as_dict() for x in await tenant_limits(conn, tenant.id)}.get(resource)
        await conn.execute(
            """
            INSERT INTO control.tenant_limits (tenant_id, resource, limit_value, is_override, reset_period)
            VALUES (%s, %s, %s, true, %s)
            ON CONFLICT (tenant_id, resource) DO UPDATE
                SET limit_value = EXCLUDED.limit_value, is_override = true,
                    reset_period = EXCLUDED.reset_period, updated_at = now()
            """,
            (tenant.id, resource, limit, period),
        )
        await audit.record(
            conn, actor=actor, action="tenant.limit_set", tenant_id=tenant.id, tenant_slug=slug,
            before=before, after={"resource": resource, "limit": limit, "reset_period": period},
        )  # fmt: skip
        return await tenant_limits(conn, tenant.id)


async def unset_tenant_limit(db: Database, slug: str, resource: str, *, actor: str) -> list[TenantLimit]:
    """Drop an override: the tenant's plan value applies again (or no limit, if the plan has none)."""
    resource = validate_resource(resource)
    async with db.owner() as conn, conn.transaction():
        await lock_tenant_slug(conn, slug)
        tenant = await require_tenant(conn, slug)
        current = {x.resource: x for x in await tenant_limits(conn, tenant.id)}.get(resource)
        if current is None or not current.is_override:
            raise NotFound(f"tenant {slug!r} has no override for {resource!r}")
        cur = await conn.execute(
            "SELECT limit_value, reset_period FROM control.plan_limits WHERE plan = %s AND resource = %s",
            (tenant.plan, resource),
        )
        row = await cur.fetchone()
        if row is None:
            await conn.execute(
                "DELETE FROM control.tenant_limits WHERE tenant_id = %s AND resource = %s",
                (tenant.id, resource),
            )
        else:
            await conn.execute(
                """
                UPDATE control.tenant_limits SET limit_value = %s, reset_period = %s, is_override = false,
                       updated_at = now()
                WHERE tenant_id = %s AND resource = %s
                """,
                (row[0], row[1], tenant.id, resource),
            )
        await audit.record(
            conn, actor=actor, action="tenant.limit_unset", tenant_id=tenant.id, tenant_slug=slug,
            before=current.as_dict(), after={"resource": resource, "limit": row[0] if row else None},
        )  # fmt: skip
        return await tenant_limits(conn, tenant.id)


async def change_tenant_plan(
    db: Database, slug: str, plan: str, *, actor: str, now: datetime | None = None
) -> list[TenantLimit]:
    """Move a tenant to another plan now: non-overridden limits follow the plan; billing prorates."""
    async with db.owner() as conn, conn.transaction():
        await lock_tenant_slug(conn, slug)
        tenant = await require_tenant(conn, slug)
        cur = await conn.execute("SELECT 1 FROM control.plans WHERE code = %s AND is_active", (plan,))
        if await cur.fetchone() is None:
            raise InvalidInput("plan", f"{plan[:40]!r} is not an active plan")
        if tenant.plan == plan:
            return await tenant_limits(conn, tenant.id)
        cur = await conn.execute("SELECT coalesce(%s, now())", (now,))
        row = await cur.fetchone()
        assert row is not None
        changed_at: datetime = row[0]
        cur = await conn.execute(
            "SELECT max(changed_at) FROM control.tenant_plan_history WHERE tenant_id = %s", (tenant.id,)
        )
        last = await cur.fetchone()
        if last is not None and last[0] is not None and last[0] > changed_at:
            raise Conflict("a later plan change is already recorded for this tenant")
        await conn.execute(
            "UPDATE control.tenants SET plan = %s, updated_at = now() WHERE id = %s", (plan, tenant.id)
        )
        await conn.execute(
            """
            INSERT INTO control.tenant_plan_history (tenant_id, from_plan, to_plan, changed_at, actor)
            VALUES (%s, %s, %s, %s, %s)
            """,
            (tenant.id, tenant.plan, plan, changed_at, actor),
        )
        # Limits the new plan does not have (and that were not overridden) are dropped.
        await conn.execute(
            """
            DELETE FROM control.tenant_limits tl WHERE tl.tenant_id = %s AND NOT tl.is_override
              AND NOT EXISTS (SELECT 1 FROM control.plan_limits pl WHERE pl.plan = %s AND pl.resource = tl.resource)
            """,
            (tenant.id, plan),
        )
        await conn.execute(
            """
            INSERT INTO control.tenant_limits (tenant_id, resource, limit_value, reset_period)
            SELECT %s, resource, limit_value, reset_period FROM control.plan_limits WHERE plan = %s
            ON CONFLICT (tenant_id, resource) DO UPDATE
                SET limit_value = EXCLUDED.limit_value, reset_period = EXCLUDED.reset_period, updated_at = now()
                WHERE NOT control.tenant_limits.is_override
            """,
            (tenant.id, plan),
        )
        await audit.record(
            conn, actor=actor, action="tenant.plan_change", tenant_id=tenant.id, tenant_slug=slug,
            before={"plan": tenant.plan}, after={"plan": plan, "changed_at": changed_at.isoformat()},
        )  # fmt: skip
        return await tenant_limits(conn, tenant.id)
