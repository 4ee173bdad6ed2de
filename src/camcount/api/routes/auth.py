"""``POST /t/{slug}/auth/token``: the OAuth2 password flow for a tenant's users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from pydantic import BaseModel

from camcount.accounts import users
from camcount.api.deps import get_db, get_resolver
from camcount.api.middleware import NO_SLUG
from camcount.db.pools import Database
from camcount.tenancy.resolution import TenantNotFound, TenantResolver, check_status

router = APIRouter(tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type)
    expires_in: int


@router.post(
    "/auth/token", response_model=TokenOut, summary="Log in: username and password for an access token"
)
async def issue_token(
    request: Request,
    slug: Annotated[str, Path(description="The tenant's slug.", max_length=100)],
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    db: Annotated[Database, Depends(get_db)],
    resolver: Annotated[TenantResolver, Depends(get_resolver)],
) -> TokenOut:
    named = await resolver.named_slug(
        path_slug=None if slug == NO_SLUG else slug,
        host=request.headers.get("host"),
        header_slug=request.headers.get("x-tenant"),
    )
    tenant = await resolver.tenant_by_slug(named) if named is not None else None
    if tenant is None:
        raise TenantNotFound
    check_status(tenant)
    user = await users.authenticate(db, tenant, username, password)
    token = request.app.state.tokens.issue(tenant_id=tenant.id, user_id=user.id, role=user.role)
    return TokenOut(access_token=token, expires_in=request.app.state.tokens.lifetime_seconds)
