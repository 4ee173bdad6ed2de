"""``/t/{slug}/users``: a tenant's users (admins and owners)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from camcount.accounts import users
from camcount.accounts.roles import Role
from camcount.api.deps import Db, Permission, ResourceId, TenantContext, require
from camcount.api.models import UserIn, UserOut, UserPatch
from camcount.api.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, Page, decode_cursor, page

router = APIRouter(tags=["users"])
Manager = Annotated[TenantContext, Depends(require(Permission.MANAGE_USERS))]


def _out(user: users.User) -> UserOut:
    return UserOut(**asdict(user))


@router.post("/users", status_code=201, response_model=UserOut, summary="Create a user")
async def create_user(body: UserIn, ctx: Manager, db: Db) -> UserOut:
    request = users.UserRequest.parse(**body.model_dump())
    return _out(await users.create_user(db, ctx.tenant, request, actor="api", actor_role=ctx.principal.role))


@router.get("/users", response_model=Page[UserOut], summary="List users")
async def list_users(
    ctx: Manager,
    db: Db,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
    role: Annotated[Role | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
) -> Page[UserOut]:
    rows = await users.list_users(
        db, ctx.tenant, after_id=decode_cursor(cursor), limit=limit + 1, role=role, active=active
    )
    return page(rows, limit, _out)


@router.get("/users/{user_id}", response_model=UserOut, summary="Get a user")
async def get_user(user_id: ResourceId, ctx: Manager, db: Db) -> UserOut:
    return _out(await users.get_user(db, ctx.tenant, user_id))


@router.patch(
    "/users/{user_id}", response_model=UserOut, summary="Change a user (email, role, password, active)"
)
async def update_user(user_id: ResourceId, body: UserPatch, ctx: Manager, db: Db) -> UserOut:
    changes = users.UserChanges.parse(**body.model_dump())
    return _out(await users.update_user(db, ctx.tenant, user_id, changes, actor_role=ctx.principal.role))


@router.delete("/users/{user_id}", status_code=204, summary="Delete a user")
async def delete_user(user_id: ResourceId, ctx: Manager, db: Db) -> Response:
    await users.delete_user(db, ctx.tenant, user_id, actor_role=ctx.principal.role)
    return Response(status_code=204)
