"""``/t/{slug}/cameras``: a tenant's cameras. Device keys may read the cameras in their scope.

``GET /cameras/{id}`` is the hot read path (the edge worker polls its camera's configuration). Its
answer is cached, already serialised, under the tenant-prefixed key ``t:{tenant}:camera:{id}``
(:mod:`camcount.cache`; Redis when configured) for ``tenant_cache_seconds``. Every write to a
camera through the API drops the entry (PATCH, DELETE; a tenant-wide invalidation drops it too);
``last_delivery_at``, written by ingestion at most every 30 s, may lag by that TTL as well.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import TypeAdapter

from camcount.api.deps import CacheDep, Db, Permission, ResourceId, TenantContext, require
from camcount.api.models import CameraIn, CameraOut, CameraPatch
from camcount.api.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page, decode_cursor, page
from camcount.cache import Cache
from camcount.counting import cameras
from camcount.counting.aggregate_cache import counts_changed
from camcount.errors import NotFound

router = APIRouter(tags=["cameras"])
ReaderOrDevice = Annotated[TenantContext, Depends(require(Permission.READ, allow_device=True))]
Reader = Annotated[TenantContext, Depends(require(Permission.READ))]
Manager = Annotated[TenantContext, Depends(require(Permission.MANAGE_CAMERAS))]
_ONE = TypeAdapter(CameraOut)
_FIELDS = tuple(CameraOut.model_fields)


def _cache_name(camera_id: int) -> str:
    return f"camera:{camera_id}"


def _out(camera: cameras.Camera) -> CameraOut:
    # Field by field: dataclasses.asdict deep-copies the config on the hot path.
    return CameraOut.model_construct(**{name: getattr(camera, name) for name in _FIELDS})


@router.post("/cameras", status_code=201, response_model=CameraOut, summary="Create a camera")
async def create_camera(body: CameraIn, ctx: Manager, db: Db) -> CameraOut:
    fields = cameras.CameraFields.parse(**body.model_dump())
    return _out(await cameras.create_camera(db, ctx.tenant, fields))


@router.get("/cameras", response_model=Page[CameraOut], summary="List cameras")
async def list_cameras(
    ctx: Reader,
    db: Db,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    site_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: Annotated[str | None, Query(max_length=20, description="active, inactive or maintenance")] = None,
) -> Page[CameraOut]:
    rows = await cameras.list_cameras(
        db, ctx.tenant, after_id=decode_cursor(cursor), limit=limit + 1, site_id=site_id, status=status
    )
    return page(rows, limit, _out)


@router.get(
    "/cameras/{camera_id}",
    response_model=CameraOut,
    summary="Get a camera (also with a device key whose scope includes it)",
)
async def get_camera(camera_id: ResourceId, ctx: ReaderOrDevice, request: Request) -> Response:
    state = request.app.state
    cache: Cache = state.cache
    cached = await cache.get(ctx.tenant.id, _cache_name(camera_id))
    if cached is None:
        camera = await cameras.get_camera(state.db, ctx.tenant, camera_id)
        # Serialised straight from the record: the hot read path skips re-validating its own output.
        cached = [camera.site_id, _ONE.dump_json(_out(camera)).decode()]
        await cache.set(ctx.tenant.id, _cache_name(camera_id), cached, state.settings.tenant_cache_seconds)
    site_id, body = cached
    principal = ctx.principal
    if principal.kind == "device" and not (
        principal.camera_id == camera_id or (principal.site_id is not None and principal.site_id == site_id)
    ):
        raise NotFound(f"camera {camera_id} not found")
    return Response(body, media_type="application/json")


@router.patch("/cameras/{camera_id}", response_model=CameraOut, summary="Change a camera")
async def update_camera(
    camera_id: ResourceId, body: CameraPatch, ctx: Manager, db: Db, cache: CacheDep
) -> CameraOut:
    fields = cameras.CameraFields.parse(**body.model_dump())
    try:
        return _out(await cameras.update_camera(db, ctx.tenant, camera_id, fields))
    finally:
        await cache.delete(ctx.tenant.id, _cache_name(camera_id))  # also after a failed write: harmless
        if fields.site_id is not None:
            await counts_changed(cache, ctx.tenant.id)  # its counts now follow another site's time zone


@router.delete(
    "/cameras/{camera_id}", status_code=204, summary="Delete a camera, its events and the keys scoped to it"
)
async def delete_camera(camera_id: ResourceId, ctx: Manager, db: Db, cache: CacheDep) -> Response:
    await cameras.delete_camera(db, ctx.tenant, camera_id)
    await cache.invalidate_tenant(ctx.tenant.id)  # keys scoped to it are gone
    return Response(status_code=204)
