"""``/admin/plans``, ``/admin/usage`` and ``/admin/invoices``: the operator's plans, usage and billing."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from camcount.api.deps import CacheDep, get_db, require_operator
from camcount.billing.cycles import get_invoice, list_invoices, run_billing, set_invoice_status
from camcount.billing.export import invoices_csv
from camcount.db.pools import Database
from camcount.limits import plans
from camcount.limits.usage import threshold_events, usage_report

router = APIRouter(tags=["admin: plans, usage and billing"])
Operator = Annotated[str, Depends(require_operator())]
Db = Annotated[Database, Depends(get_db)]
Code = Annotated[str, PathParam(max_length=40)]
Resource = Annotated[str, PathParam(max_length=60)]


def _actor(operator: str) -> str:
    return f"operator:{operator}"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanIn(Strict):
    code: Annotated[str, Field(max_length=40)]
    name: Annotated[str, Field(max_length=300)]
    base_price: Annotated[Decimal, Field(ge=0, le=Decimal("99999999.99"), decimal_places=2)]
    requests_per_second: Annotated[int, Field(ge=1, le=1_000_000)]
    device_requests_per_second: Annotated[int, Field(ge=1, le=1_000_000)] = 5
    retention_days: Annotated[int, Field(ge=1, le=36500)] = 365
    currency: Annotated[str, Field(max_length=3)] = "USD"
    copy_from: Annotated[str | None, Field(max_length=40)] = None


class PlanPatch(Strict):
    name: Annotated[str | None, Field(max_length=300)] = None
    base_price: Annotated[Decimal | None, Field(ge=0, le=Decimal("99999999.99"), decimal_places=2)] = None
    requests_per_second: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    device_requests_per_second: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    retention_days: Annotated[int | None, Field(ge=1, le=36500)] = None
    is_active: bool | None = None


class LimitIn(Strict):
    limit: Annotated[int, Field(ge=0, le=plans.MAX_LIMIT)]
    reset_period: Annotated[str | None, Field(max_length=10)] = None


class PriceIn(Strict):
    unit_price: Annotated[Decimal, Field(ge=0, le=plans.MAX_PRICE, decimal_places=4)]


class InvoiceStatusIn(Strict):
    status: Annotated[str, Field(max_length=20)]


class BillingRunIn(Strict):
    period: Annotated[str, Field(max_length=7, examples=["2026-11"])]
    tenant: Annotated[str | None, Field(max_length=100)] = None


@router.get("/plans")
async def get_plans(operator: Operator, db: Db) -> list[dict[str, Any]]:
    async with db.owner() as conn:
        return [p.as_dict() for p in await plans.list_plans(conn)]


@router.get("/plans/{code}")
async def get_plan(code: Code, operator: Operator, db: Db) -> dict[str, Any]:
    async with db.owner() as conn:
        return (await plans.get_plan(conn, code)).as_dict()


@router.post("/plans", status_code=201)
async def post_plan(body: PlanIn, operator: Operator, db: Db) -> dict[str, Any]:
    plan = await plans.create_plan(
        db, body.code, name=body.name, base_price=body.base_price, requests_per_second=body.requests_per_second,
        device_requests_per_second=body.device_requests_per_second, retention_days=body.retention_days,
        currency=body.currency, copy_from=body.copy_from, actor=_actor(operator),
    )  # fmt: skip
    return plan.as_dict()


@router.patch("/plans/{code}")
async def patch_plan(
    code: Code, body: PlanPatch, operator: Operator, db: Db, cache: CacheDep
) -> dict[str, Any]:
    plan = await plans.update_plan(db, code, **body.model_dump(exclude_none=True), actor=_actor(operator))
    await cache.invalidate_tenant(None)  # rates and retention of every tenant on the plan
    return plan.as_dict()


@router.put("/plans/{code}/limits/{resource}")
async def put_plan_limit(
    code: Code, resource: Resource, body: LimitIn, operator: Operator, db: Db, cache: CacheDep
) -> dict[str, Any]:
    plan = await plans.set_plan_limit(
        db, code, resource, body.limit, reset_period=body.reset_period, actor=_actor(operator)
    )
    await cache.invalidate_tenant(None)  # tenants on the plan without an override get it at once
    return plan.as_dict()


@router.put("/plans/{code}/prices/{resource}")
async def put_plan_price(
    code: Code, resource: Resource, body: PriceIn, operator: Operator, db: Db
) -> dict[str, Any]:
    return (await plans.set_plan_price(db, code, resource, body.unit_price, actor=_actor(operator))).as_dict()


@router.get("/usage")
async def get_usage(
    operator: Operator,
    db: Db,
    tenant: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[
        str | None, Query(max_length=20, description="LOW, MEDIUM, HIGH, LIMIT_REACHED")
    ] = None,
) -> list[dict[str, Any]]:
    """Every active tenant's usage against its limits (entities as last measured; one tenant: live)."""
    rows = await usage_report(db, tenant_slug=tenant, status=status, live=tenant is not None)
    return [r.as_dict() for r in rows]


@router.get("/usage/events")
async def get_usage_events(
    operator: Operator, db: Db, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """Recorded crossings of 80% and 100% of a limit, newest first."""
    return await threshold_events(db, limit=limit)


@router.get("/invoices")
async def get_invoices(
    operator: Operator,
    db: Db,
    tenant: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    invoices = await list_invoices(db, tenant_slug=tenant, status=status, after_id=after_id, limit=limit)
    return {
        "items": [i.as_dict() for i in invoices],
        "next_after_id": invoices[-1].id if len(invoices) == limit else None,
    }


@router.get("/invoices.csv", response_class=Response)
async def get_invoices_csv(
    operator: Operator,
    db: Db,
    tenant: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    lines: bool = False,
) -> Response:
    invoices = await list_invoices(db, tenant_slug=tenant, status=status, limit=100_000)
    return Response(invoices_csv(invoices, lines=lines), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="invoices.csv"'})  # fmt: skip


@router.get("/invoices/{invoice_id}")
async def get_one_invoice(
    invoice_id: Annotated[int, PathParam(ge=1, le=2**62)], operator: Operator, db: Db
) -> dict[str, Any]:
    return (await get_invoice(db, invoice_id)).as_dict()


@router.post("/invoices/{invoice_id}/status")
async def post_invoice_status(
    invoice_id: Annotated[int, PathParam(ge=1, le=2**62)], body: InvoiceStatusIn, operator: Operator, db: Db
) -> dict[str, Any]:
    return (await set_invoice_status(db, invoice_id, body.status, actor=_actor(operator))).as_dict()


@router.post("/billing/runs")
async def post_billing_run(body: BillingRunIn, operator: Operator, db: Db) -> dict[str, Any]:
    """Bill a period (idempotent: a second run creates nothing)."""
    result = await run_billing(db, body.period, actor=_actor(operator), tenant_slug=body.tenant)
    return result.as_dict()
