"""``/t/{slug}/usage``: a tenant's own usage against its limits, with status and reset times."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from camcount.api.deps import Permission, TenantContext, get_db, require
from camcount.db.pools import Database
from camcount.limits.usage import threshold_events, usage_report

router = APIRouter(tags=["usage and invoices"])


@router.get("/usage")
async def get_usage(
    ctx: Annotated[TenantContext, Depends(require(Permission.READ))],
    db: Annotated[Database, Depends(get_db)],
) -> dict[str, Any]:
    """Limit, usage, percent and status per resource (LOW <50%, MEDIUM, HIGH >=80%, LIMIT_REACHED)."""
    rows = await usage_report(db, tenant_slug=ctx.tenant.slug, live=True)
    return {
        "tenant": ctx.tenant.slug,
        "plan": ctx.tenant.plan,
        "timezone": ctx.tenant.timezone,
        "resources": [r.as_dict(include_tenant=False) for r in rows],
        "events": await threshold_events(db, tenant_id=ctx.tenant.id, limit=50),
    }
