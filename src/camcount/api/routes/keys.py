"""``/t/{slug}/keys``: device keys (admins and owners). The key itself is shown once, at creation."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from camcount.accounts import keys
from camcount.api.deps import CacheDep, Db, Permission, ResourceId, TenantContext, require
from camcount.api.models import KeyIn, KeyOut, KeyPatch, NewKeyOut
from camcount.api.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page, decode_cursor, page

router = APIRouter(tags=["device keys"])
Manager = Annotated[TenantContext, Depends(require(Permission.MANAGE_KEYS))]
OptionalId = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


def _out(key: keys.DeviceKey) -> KeyOut:
    return KeyOut(**asdict(key))


@router.post("/keys", status_code=201, response_model=NewKeyOut, summary="Create a device key (shown once)")
async def create_key(body: KeyIn, ctx: Manager, db: Db) -> NewKeyOut:
    request = keys.KeyRequest.parse(**body.model_dump())
    key, plaintext = await keys.create_key(db, ctx.tenant, request)
    return NewKeyOut(**asdict(key), key=plaintext)


@router.get("/keys", response_model=Page[KeyOut], summary="List device keys")
async def list_keys(
    ctx: Manager,
    db: Db,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    site_id: OptionalId = None,
    camera_id: OptionalId = None,
    revoked: Annotated[bool | None, Query()] = None,
) -> Page[KeyOut]:
    rows = await keys.list_keys(
        db, ctx.tenant, after_id=decode_cursor(cursor), limit=limit + 1, site_id=site_id, camera_id=camera_id,
        revoked=revoked,
    )  # fmt: skip
    return page(rows, limit, _out)


@router.get("/keys/{key_id}", response_model=KeyOut, summary="Get a device key (never the key itself)")
async def get_key(key_id: ResourceId, ctx: Manager, db: Db) -> KeyOut:
    return _out(await keys.get_key(db, ctx.tenant, key_id))


@router.patch("/keys/{key_id}", response_model=KeyOut, summary="Rename a device key")
async def update_key(key_id: ResourceId, body: KeyPatch, ctx: Manager, db: Db) -> KeyOut:
    return _out(await keys.rename_key(db, ctx.tenant, key_id, body.name))


@router.post("/keys/{key_id}/revoke", response_model=KeyOut, summary="Revoke a device key")
async def revoke_key(key_id: ResourceId, ctx: Manager, db: Db, cache: CacheDep) -> KeyOut:
    key = await keys.revoke_key(db, ctx.tenant, key_id)
    await cache.invalidate_tenant(ctx.tenant.id)
    return _out(key)


@router.delete("/keys/{key_id}", status_code=204, summary="Delete a device key")
async def delete_key(key_id: ResourceId, ctx: Manager, db: Db, cache: CacheDep) -> Response:
    await keys.delete_key(db, ctx.tenant, key_id)
    await cache.invalidate_tenant(ctx.tenant.id)
    return Response(status_code=204)
