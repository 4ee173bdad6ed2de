"""FastAPI dependencies: the contract every route codes against.

Tenant routes live in routers listed in :data:`camcount.api.routes.TENANT_ROUTERS`, mounted under
``/t/{slug}`` by :func:`camcount.app.create_app`; the ``slug`` path parameter is declared here, by
:func:`require`, so a route never declares it. A route asks for what it needs::

    @router.get("/things/{thing_id}")
    async def get_thing(thing_id: int, ctx: Annotated[TenantContext, Depends(require(Permission.READ))],
                        db: Annotated[Database, Depends(get_db)]) -> ThingOut:
        async with tenant_transaction(db, ctx.tenant.location) as conn: ...

``require`` resolves the tenant (path, host, ``X-Tenant``, credential), authenticates, checks the
tenant's status and the permission. Device keys pass only ``INGEST`` (and, with
``allow_device=True``, routes that check the key's scope themselves, such as reading a camera).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from camcount.accounts.operators import OperatorService
from camcount.accounts.roles import Permission, Role, allows
from camcount.api.middleware import NO_SLUG
from camcount.cache import Cache
from camcount.db.pools import Database
from camcount.errors import AuthenticationFailed, PermissionDenied
from camcount.limits.rate import enforce_request
from camcount.tenancy.models import Tenant
from camcount.tenancy.resolution import Principal, TenantResolver

__all__ = [
    "CacheDep",
    "Db",
    "Permission",
    "Principal",
    "ResourceId",
    "Role",
    "TenantContext",
    "get_cache",
    "get_db",
    "get_resolver",
    "require",
    "require_operator",
]

bearer = HTTPBearer(
    auto_error=False,
    description="An access token from /t/{slug}/auth/token, a device key (ck_...) or, for /admin, an "
    "operator token (op_...).",
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass(frozen=True)
class TenantContext:
    tenant: Tenant
    principal: Principal
    request_id: str


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_cache(request: Request) -> Cache:
    cache: Cache = request.app.state.cache
    return cache


async def get_resolver(request: Request) -> TenantResolver:
    resolver: TenantResolver = request.app.state.resolver
    return resolver


Db = Annotated[Database, Depends(get_db)]
CacheDep = Annotated[Cache, Depends(get_cache)]
ResourceId = Annotated[int, Path(ge=1, le=2**63 - 1)]
"""The id of a tenant's site, camera, user or key in a path: a positive bigint."""


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "-"))


def require(permission: Permission, *, allow_device: bool = False) -> Callable[..., Awaitable[TenantContext]]:
    """A dependency giving the request's :class:`TenantContext` once it may do ``permission``."""

    async def dependency(
        request: Request,
        slug: Annotated[str, Path(description="The tenant's slug.", max_length=100)],
        credentials: Bearer,
        x_tenant: Annotated[
            str | None, Header(alias="X-Tenant", description="Optional: the tenant's slug.", max_length=100)
        ] = None,
    ) -> TenantContext:
        resolver: TenantResolver = request.app.state.resolver
        tenant, principal = await resolver.resolve(
            path_slug=None if slug == NO_SLUG else slug,
            host=request.headers.get("host"),
            header_slug=x_tenant,
            credential=credentials.credentials if credentials is not None else None,
        )
        _authorise(principal, permission, allow_device)
        await enforce_request(request, tenant, principal)  # rate limits and quota (camcount.limits.rate)
        return TenantContext(tenant, principal, _request_id(request))

    dependency.__name__ = f"require_{permission}"
    return dependency


def _authorise(principal: Principal, permission: Permission, allow_device: bool) -> None:
    if principal.kind == "device":
        if permission is Permission.INGEST or allow_device:
            return
        raise PermissionDenied("a device key may only send events (and read its own cameras)")
    if principal.role is None or not allows(principal.role, permission):
        raise PermissionDenied(f"the role {principal.role} may not {permission.replace('_', ' ')}")


def require_operator() -> Callable[..., Awaitable[str]]:
    """A dependency giving the operator's name for ``/admin`` routes (operator tokens only)."""

    async def dependency(request: Request, credentials: Bearer) -> str:
        if credentials is None:
            raise AuthenticationFailed("authentication required: send Authorization: Bearer <operator token>")
        operators: OperatorService = request.app.state.operators
        return await operators.verify(credentials.credentials)

    dependency.__name__ = "require_operator"
    return dependency
