"""``camcount plan ...`` and ``camcount tenant limit|plan ...``: plans, prices, overrides (all audited)."""

from __future__ import annotations

from typing import Annotated

import typer

from camcount.cli.common import actor, console, print_json, print_table, run, run_tenant_change
from camcount.db.pools import Database
from camcount.limits import plans as actions
from camcount.limits.plans import Plan, TenantLimit

app = typer.Typer(help="Plans: limits, prices and request rates, as data.", no_args_is_help=True)
limit_app = typer.Typer(help="Per-tenant limit overrides.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _show_plan(plan: Plan, as_json: bool) -> None:
    if as_json:
        print_json(plan.as_dict())
        return
    print_table(
        f"plan {plan.code}: {plan.name}, {plan.base_price} {plan.currency}/month, {plan.requests_per_second} req/s "
        f"(device {plan.device_requests_per_second}/s), retention {plan.retention_days} d"
        + ("" if plan.is_active else " [inactive]"),
        ("resource", "limit", "reset period", "unit price"),
        [
            (r, plan.limits.get(r, ""), plan.reset_periods.get(r) or "", plan.prices.get(r, ""))
            for r in sorted({*plan.limits, *plan.prices})
        ],
    )


def _show_limits(slug: str, limits: list[TenantLimit], as_json: bool) -> None:
    if as_json:
        print_json([x.as_dict() for x in limits])
    else:
        print_table(f"limits of {slug}", ("resource", "limit", "override", "reset period", "usage"),
                    ((x.resource, x.limit, "yes" if x.is_override else "", x.reset_period or "", x.current_usage)
                     for x in limits))  # fmt: skip


@app.command("list")
def plan_list(as_json: JsonOption = False) -> None:
    """List plans with their base price and request rates."""

    async def action(db: Database) -> list[Plan]:
        async with db.owner() as conn:
            return await actions.list_plans(conn)

    plans = run(action)
    if as_json:
        print_json([p.as_dict() for p in plans])
        return
    print_table("plans", ("code", "name", "base price", "currency", "req/s", "device req/s", "active"),
                ((p.code, p.name, p.base_price, p.currency, p.requests_per_second, p.device_requests_per_second,
                  "yes" if p.is_active else "no") for p in plans))  # fmt: skip


@app.command("show")
def plan_show(code: str, as_json: JsonOption = False) -> None:
    """Show one plan's limits and usage prices."""

    async def action(db: Database) -> Plan:
        async with db.owner() as conn:
            return await actions.get_plan(conn, code)

    _show_plan(run(action), as_json)


@app.command("create")
def plan_create(
    code: str,
    name: Annotated[str, typer.Option(help="Display name.")],
    base_price: Annotated[str, typer.Option(help="Monthly base price, e.g. 49.00.")],
    rate: Annotated[int, typer.Option(help="Requests per second per tenant.")],
    device_rate: Annotated[int, typer.Option(help="Requests per second per device key.")] = 5,
    retention_days: Annotated[int, typer.Option(help="Days of counts kept.")] = 365,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency.")] = "USD",
    copy_from: Annotated[str | None, typer.Option(help="Copy limits and prices from this plan.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a plan (optionally starting from another plan's limits and prices)."""
    plan = run(lambda db: actions.create_plan(
        db, code, name=name, base_price=base_price, requests_per_second=rate, device_requests_per_second=device_rate,
        retention_days=retention_days, currency=currency, copy_from=copy_from, actor=actor(),
    ))  # fmt: skip
    _show_plan(plan, as_json)


@app.command("update")
def plan_update(
    code: str,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    base_price: Annotated[str | None, typer.Option(help="Monthly base price.")] = None,
    rate: Annotated[int | None, typer.Option(help="Requests per second per tenant.")] = None,
    device_rate: Annotated[int | None, typer.Option(help="Requests per second per device key.")] = None,
    retention_days: Annotated[int | None, typer.Option(help="Days of counts kept.")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Offer to new tenants.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Change a plan's name, price, rates, retention or availability."""
    plan = run_tenant_change(lambda db: actions.update_plan(
        db, code, name=name, base_price=base_price, requests_per_second=rate, device_requests_per_second=device_rate,
        retention_days=retention_days, is_active=active, actor=actor(),
    ), None)  # fmt: skip
    _show_plan(plan, as_json)


@app.command("set-limit")
def plan_set_limit(
    code: str,
    resource: str,
    value: int,
    reset_period: Annotated[str | None, typer.Option(help="daily, weekly, monthly, yearly or none.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set a plan's limit; tenants on the plan without an override get it at once."""
    _show_plan(
        run_tenant_change(
            lambda db: actions.set_plan_limit(
                db, code, resource, value, reset_period=reset_period, actor=actor()
            ),
            None,  # every tenant on the plan
        ),
        as_json,
    )


@app.command("set-price")
def plan_set_price(code: str, resource: str, price: str, as_json: JsonOption = False) -> None:
    """Set a usage price per unit (storage_gb per GB-month, api_calls per call, cameras per camera-month, ...)."""
    _show_plan(run(lambda db: actions.set_plan_price(db, code, resource, price, actor=actor())), as_json)


@limit_app.command("set")
def limit_set(
    slug: str,
    resource: str,
    value: int,
    reset_period: Annotated[str | None, typer.Option(help="daily, weekly, monthly, yearly or none.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Override one limit for one tenant."""
    limits = run_tenant_change(lambda db: actions.set_tenant_limit(db, slug, resource, value, reset_period=reset_period,
                                                                   actor=actor()), slug)  # fmt: skip
    _show_limits(slug, limits, as_json)


@limit_app.command("unset")
def limit_unset(slug: str, resource: str, as_json: JsonOption = False) -> None:
    """Remove an override: the plan's value applies again."""
    limits = run_tenant_change(lambda db: actions.unset_tenant_limit(db, slug, resource, actor=actor()), slug)
    _show_limits(slug, limits, as_json)


@limit_app.command("list")
def limit_list(slug: str, as_json: JsonOption = False) -> None:
    """Show a tenant's effective limits."""

    async def action(db: Database) -> list[TenantLimit]:
        from camcount.tenancy.lifecycle import require_tenant

        async with db.owner() as conn:
            tenant = await require_tenant(conn, slug)
            return await actions.tenant_limits(conn, tenant.id)

    _show_limits(slug, run(action), as_json)


def tenant_plan(slug: str, plan: str, as_json: JsonOption = False) -> None:
    """Move a tenant to another plan now: limits follow (except overrides); billing prorates."""
    limits = run_tenant_change(lambda db: actions.change_tenant_plan(db, slug, plan, actor=actor()), slug)
    if not as_json:
        console.print(f"tenant [bold]{slug}[/bold] is on plan {plan}", highlight=False)
    _show_limits(slug, limits, as_json)
