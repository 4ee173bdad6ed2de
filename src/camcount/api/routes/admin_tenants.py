"""``/admin/tenants``: the operator's tenant actions, the same ones the CLI calls, all audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from camcount.api.deps import get_cache, get_db, require_operator
from camcount.cache import Cache
from camcount.db.pools import Database
from camcount.limits import plans
from camcount.runtime import optional_secret_box
from camcount.tenancy import configs
from camcount.tenancy.lifecycle import delete_tenant, list_tenants, require_tenant, set_status
from camcount.tenancy.models import Status, Tenant
from camcount.tenancy.provisioning import TenantRequest, create_tenant

router = APIRouter(tags=["admin: tenants"])
Operator = Annotated[str, Depends(require_operator())]
Db = Annotated[Database, Depends(get_db)]
CacheDep = Annotated[Cache, Depends(get_cache)]
Slug = Annotated[str, PathParam(max_length=100)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantIn(Strict):
    slug: Annotated[str, Field(max_length=100)]
    name: Annotated[str, Field(max_length=300)]
    plan: Annotated[str, Field(max_length=40)] = "standard"
    placement: Annotated[str, Field(max_length=20)] = "pooled"
    server: Annotated[str | None, Field(max_length=40)] = None
    domain: Annotated[str | None, Field(max_length=300)] = None
    subdomain: Annotated[str | None, Field(max_length=100)] = None
    timezone: Annotated[str, Field(max_length=64)] = "UTC"


class TenantOut(BaseModel):
    id: int
    slug: str
    name: str
    status: str
    plan: str
    placement: str
    server: str
    schema_: str = Field(alias="schema")
    database: str | None
    domain: str | None
    subdomain: str | None
    timezone: str
    billing_cycle: str
    metadata: dict[str, Any]
    created_at: str | None
    updated_at: str | None
    created: bool | None = None

    model_config = ConfigDict(populate_by_name=True)


class TenantList(BaseModel):
    items: list[TenantOut]
    next_cursor: str | None = None


class PlanIn(Strict):
    plan: Annotated[str, Field(max_length=40)]


class LimitIn(Strict):
    limit: Annotated[int, Field(ge=0, le=2**62)]
    reset_period: Annotated[str | None, Field(max_length=20)] = None


class LimitOut(BaseModel):
    resource: str
    limit: int
    is_override: bool
    reset_period: str | None
    current_usage: int
    period_start: str | None


class ConfigIn(Strict):
    value: Annotated[str, Field(max_length=65_536)]
    type: Annotated[str, Field(max_length=10)] = "string"
    secret: bool = False


class ConfigOut(BaseModel):
    key: str
    type: str
    secret: bool
    value: Any


def _tenant(tenant: Tenant, created: bool | None = None) -> TenantOut:
    return TenantOut.model_validate({**tenant.public_dict(), "created": created})


def _limits(rows: list[plans.TenantLimit]) -> list[LimitOut]:
    return [
        LimitOut(
            resource=r.resource, limit=r.limit, is_override=r.is_override, reset_period=r.reset_period,
            current_usage=r.current_usage, period_start=r.period_start.isoformat() if r.period_start else None,
        )
        for r in rows
    ]  # fmt: skip


def _actor(operator: str) -> str:
    return f"operator:{operator}"


@router.post("/tenants", status_code=201, response_model=TenantOut, response_model_by_alias=True)
async def create(body: TenantIn, operator: Operator, db: Db, response: Response) -> TenantOut:
    """Provision a tenant; the same request again answers 200 with the existing tenant."""
    request = TenantRequest.parse(body.slug, **body.model_dump(exclude={"slug"}))
    result = await create_tenant(db, request, actor=_actor(operator))
    if not result.created:
        response.status_code = 200
    return _tenant(result.tenant, result.created)


@router.get("/tenants", response_model=TenantList, response_model_by_alias=True)
async def list_all(
    operator: Operator, db: Db, status: Annotated[str | None, Query(max_length=20)] = None
) -> TenantList:
    async with db.owner() as conn:
        tenants = await list_tenants(conn, status=status)
    return TenantList(items=[_tenant(t) for t in tenants])


@router.get("/tenants/{slug}", response_model=TenantOut, response_model_by_alias=True)
async def show(slug: Slug, operator: Operator, db: Db) -> TenantOut:
    async with db.owner() as conn:
        return _tenant(await require_tenant(conn, slug))


async def _set_status(db: Database, cache: Cache, slug: str, status: Status, operator: str) -> TenantOut:
    tenant = await set_status(db, slug, status, actor=_actor(operator))
    await cache.invalidate_tenant(tenant.id)
    return _tenant(tenant)


@router.post("/tenants/{slug}/suspend", response_model=TenantOut, response_model_by_alias=True)
async def suspend(slug: Slug, operator: Operator, db: Db, cache: CacheDep) -> TenantOut:
    return await _set_status(db, cache, slug, Status.SUSPENDED, operator)


@router.post("/tenants/{slug}/activate", response_model=TenantOut, response_model_by_alias=True)
async def activate(slug: Slug, operator: Operator, db: Db, cache: CacheDep) -> TenantOut:
    return await _set_status(db, cache, slug, Status.ACTIVE, operator)


@router.post("/tenants/{slug}/deactivate", response_model=TenantOut, response_model_by_alias=True)
async def deactivate(slug: Slug, operator: Operator, db: Db, cache: CacheDep) -> TenantOut:
    return await _set_status(db, cache, slug, Status.INACTIVE, operator)


@router.delete("/tenants/{slug}", status_code=204)
async def delete(slug: Slug, operator: Operator, db: Db, cache: CacheDep) -> Response:
    """Delete the tenant and all its data (the audit record is kept)."""
    tenant = await delete_tenant(db, slug, actor=_actor(operator))
    await cache.invalidate_tenant(tenant.id)
    return Response(status_code=204)


@router.put("/tenants/{slug}/plan", response_model=list[LimitOut])
async def change_plan(
    slug: Slug, body: PlanIn, operator: Operator, db: Db, cache: CacheDep
) -> list[LimitOut]:
    rows = await plans.change_tenant_plan(db, slug, body.plan, actor=_actor(operator))
    await _tenant_changed(db, cache, slug)
    return _limits(rows)


async def _tenant_changed(db: Database, cache: Cache, slug: str) -> None:
    """Drop what every API process caches about this tenant (its record, retention, answers)."""
    async with db.owner() as conn:
        await cache.invalidate_tenant((await require_tenant(conn, slug)).id)


@router.get("/tenants/{slug}/limits", response_model=list[LimitOut])
async def limits(slug: Slug, operator: Operator, db: Db) -> list[LimitOut]:
    async with db.owner() as conn:
        tenant = await require_tenant(conn, slug)
        return _limits(await plans.tenant_limits(conn, tenant.id))


@router.put("/tenants/{slug}/limits/{resource}", response_model=list[LimitOut])
async def set_limit(
    slug: Slug, resource: Annotated[str, PathParam(max_length=48)], body: LimitIn, operator: Operator, db: Db,
    cache: CacheDep,
) -> list[LimitOut]:  # fmt: skip
    rows = await plans.set_tenant_limit(
        db, slug, resource, body.limit, reset_period=body.reset_period, actor=_actor(operator)
    )
    await _tenant_changed(db, cache, slug)
    return _limits(rows)


@router.delete("/tenants/{slug}/limits/{resource}", response_model=list[LimitOut])
async def unset_limit(
    slug: Slug,
    resource: Annotated[str, PathParam(max_length=48)],
    operator: Operator,
    db: Db,
    cache: CacheDep,
) -> list[LimitOut]:
    rows = await plans.unset_tenant_limit(db, slug, resource, actor=_actor(operator))
    await _tenant_changed(db, cache, slug)
    return _limits(rows)


@router.get("/tenants/{slug}/config", response_model=list[ConfigOut])
async def config_list(slug: Slug, operator: Operator, db: Db) -> list[ConfigOut]:
    """Secret values are always masked over HTTP."""
    entries = await configs.list_configs(db, slug)
    return [ConfigOut(**e.as_dict()) for e in entries]


@router.put("/tenants/{slug}/config/{key}", response_model=ConfigOut)
async def config_set(
    slug: Slug, key: Annotated[str, PathParam(max_length=64)], body: ConfigIn, operator: Operator, db: Db,
    cache: CacheDep,
) -> ConfigOut:  # fmt: skip
    box = optional_secret_box(db.settings)
    entry = await configs.set_config(
        db, slug, key, body.value, value_type=body.type, secret=body.secret, box=box, actor=_actor(operator)
    )
    await _tenant_changed(db, cache, slug)
    return ConfigOut(**entry.as_dict())


@router.delete("/tenants/{slug}/config/{key}", status_code=204)
async def config_unset(
    slug: Slug, key: Annotated[str, PathParam(max_length=64)], operator: Operator, db: Db, cache: CacheDep
) -> Response:
    await configs.unset_config(db, slug, key, actor=_actor(operator))
    await _tenant_changed(db, cache, slug)
    return Response(status_code=204)
