"""``/t/{slug}/sites``: a tenant's sites."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from camcount.api.deps import CacheDep, Db, Permission, ResourceId, TenantContext, require
from camcount.api.models import SiteIn, SiteOut, SitePatch
from camcount.api.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page, decode_cursor, page
from camcount.counting import sites
from camcount.counting.aggregate_cache import counts_changed

router = APIRouter(tags=["sites"])
Reader = Annotated[TenantContext, Depends(require(Permission.READ))]
Manager = Annotated[TenantContext, Depends(require(Permission.MANAGE_CAMERAS))]


def _out(site: sites.Site) -> SiteOut:
    return SiteOut(**asdict(site))


@router.post("/sites", status_code=201, response_model=SiteOut, summary="Create a site")
async def create_site(body: SiteIn, ctx: Manager, db: Db) -> SiteOut:
    fields = sites.SiteFields.parse(**body.model_dump())
    return _out(await sites.create_site(db, ctx.tenant, fields))


@router.get("/sites", response_model=Page[SiteOut], summary="List sites")
async def list_sites(
    ctx: Reader,
    db: Db,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    name: Annotated[str | None, Query(max_length=200, description="exact name")] = None,
) -> Page[SiteOut]:
    rows = await sites.list_sites(db, ctx.tenant, after_id=decode_cursor(cursor), limit=limit + 1, name=name)
    return page(rows, limit, _out)


@router.get("/sites/{site_id}", response_model=SiteOut, summary="Get a site")
async def get_site(site_id: ResourceId, ctx: Reader, db: Db) -> SiteOut:
    return _out(await sites.get_site(db, ctx.tenant, site_id))


@router.patch("/sites/{site_id}", response_model=SiteOut, summary="Change a site")
async def update_site(site_id: ResourceId, body: SitePatch, ctx: Manager, db: Db, cache: CacheDep) -> SiteOut:
    fields = sites.SiteFields.parse(**body.model_dump())
    site = await sites.update_site(db, ctx.tenant, site_id, fields)
    await counts_changed(cache, ctx.tenant.id)  # a time zone or opening hours reshape its counts
    return _out(site)


@router.delete("/sites/{site_id}", status_code=204, summary="Delete a site (it must have no cameras)")
async def delete_site(site_id: ResourceId, ctx: Manager, db: Db) -> Response:
    await sites.delete_site(db, ctx.tenant, site_id)
    return Response(status_code=204)
