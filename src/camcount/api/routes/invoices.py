"""``/t/{slug}/invoices`` (+ ``.csv``): a tenant admin sees its own invoices, never another's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi import Path as PathParam

from camcount.api.deps import Permission, TenantContext, get_db, require
from camcount.billing.cycles import get_invoice, list_invoices
from camcount.billing.export import invoices_csv
from camcount.db.pools import Database

router = APIRouter(tags=["usage and invoices"])
Admin = Annotated[TenantContext, Depends(require(Permission.MANAGE_USERS))]
Db = Annotated[Database, Depends(get_db)]


@router.get("/invoices")
async def get_invoices(
    ctx: Admin,
    db: Db,
    status: Annotated[str | None, Query(max_length=20)] = None,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    invoices = await list_invoices(db, tenant_id=ctx.tenant.id, status=status, after_id=after_id, limit=limit)
    return {
        "items": [i.as_dict() for i in invoices],
        "next_after_id": invoices[-1].id if len(invoices) == limit else None,
    }


@router.get("/invoices.csv", response_class=Response)
async def get_invoices_csv(
    ctx: Admin, db: Db, status: Annotated[str | None, Query(max_length=20)] = None, lines: bool = False
) -> Response:
    invoices = await list_invoices(db, tenant_id=ctx.tenant.id, status=status, limit=100_000)
    return Response(invoices_csv(invoices, lines=lines), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="invoices-{ctx.tenant.slug}.csv"'})  # fmt: skip


@router.get("/invoices/{invoice_id}")
async def get_one_invoice(
    invoice_id: Annotated[int, PathParam(ge=1, le=2**62)], ctx: Admin, db: Db
) -> dict[str, Any]:
    return (await get_invoice(db, invoice_id, tenant_id=ctx.tenant.id)).as_dict()
