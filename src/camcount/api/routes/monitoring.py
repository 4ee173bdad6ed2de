"""Monitoring endpoints: tenant health and metrics for the operator, camera health for a tenant,
and the Prometheus exposition.

- ``GET /admin/health`` (operator): every tenant's health, optionally one status.
- ``GET /admin/tenants/{slug}/metrics`` (operator): one tenant's metrics.
- ``GET /t/{slug}/health`` (tenant, read): the tenant's own cameras, silent or not, and the issues
  that concern it (limits, silence, rejections); never the operator's internals.
- ``GET /metrics`` (operator token): Prometheus text format. Not public: Prometheus sends the
  operator token (``authorization: {credentials: op_...}`` in the scrape config).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from camcount.api.deps import Permission, TenantContext, get_db, require, require_operator
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.monitoring import metrics
from camcount.monitoring.health import HealthStatus, camera_health, check_all, check_tenant, status_of
from camcount.monitoring.tenant_metrics import tenant_metrics
from camcount.tenancy.lifecycle import require_tenant

# Checks a tenant may see about itself; migrations and partitions are the operator's business.
TENANT_VISIBLE_CHECKS = frozenset(
    {"limit_reached", "no_recent_events", "camera_silent", "ingestion_rejections"}
)

admin_router = APIRouter(tags=["monitoring"], dependencies=[Depends(require_operator())])
tenant_router = APIRouter(tags=["monitoring"])
metrics_router = APIRouter(tags=["monitoring"])


@admin_router.get("/health", summary="Every tenant's health with the reasons")
async def admin_health(
    db: Annotated[Database, Depends(get_db)],
    status: Annotated[HealthStatus | None, Query(description="Only tenants with this health.")] = None,
) -> dict[str, Any]:
    results = await check_all(db, now=datetime.now(UTC))
    items = [r.as_dict() for r in results if status is None or r.status is status]
    counts = {s.value: sum(1 for r in results if r.status is s) for s in HealthStatus}
    return {"items": items, "counts": counts}


@admin_router.get("/tenants/{slug}/metrics", summary="One tenant's metrics")
async def admin_tenant_metrics(
    slug: Annotated[str, Path(description="The tenant's slug.", max_length=100)],
    db: Annotated[Database, Depends(get_db)],
) -> dict[str, Any]:
    async with db.owner() as conn:
        tenant = await require_tenant(conn, slug)
    [result] = await tenant_metrics(db, [tenant], now=datetime.now(UTC))
    return result.as_dict()


@tenant_router.get("/health", summary="Your cameras' health and the issues that concern you")
async def tenant_health(
    ctx: Annotated[TenantContext, Depends(require(Permission.READ))],
    db: Annotated[Database, Depends(get_db)],
) -> dict[str, Any]:
    now = datetime.now(UTC)
    health = await check_tenant(db, ctx.tenant, now=now)
    issues = [i for i in health.issues if i.check in TENANT_VISIBLE_CHECKS]
    async with tenant_transaction(db, ctx.tenant.location) as conn:
        cameras = await camera_health(conn, now=now)
    return {
        "status": str(status_of(issues)),
        "issues": [{"check": i.check, "severity": str(i.severity), "reason": i.reason} for i in issues],
        "cameras": [c.as_dict() for c in cameras],
        "checked_at": now.isoformat(),
    }


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics (operator token)",
    dependencies=[Depends(require_operator())],
    response_class=Response,
)
async def prometheus_metrics(db: Annotated[Database, Depends(get_db)]) -> Response:
    await metrics.refresh_from_database(db)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
