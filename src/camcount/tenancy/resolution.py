"""The one tenant resolver: which tenant a request is for, and whether its credential may act there.

Sources (docs/api.md has the user-facing version):

1. *Naming sources*: the path ``/t/{slug}``, the host name (``{subdomain}.{base_domain}`` or a
   tenant's own ``domain``; a host that is no tenant's, such as the API's own, names nothing) and
   the ``X-Tenant`` header (a slug). A host ``{label}.{base_domain}`` whose label is no tenant's
   subdomain (nor one of our reserved names such as ``api`` or ``www``) names a tenant that does
   not exist: 404, as for a missing slug. All that are present must name the same tenant, else the
   request is refused (400) without saying which other tenant was named.
2. The *credential* (a user token's tenant claim, a device key's tenant) always belongs to one
   tenant. With a naming source, it must be that tenant, else 404, exactly as for a tenant that
   does not exist. Without one, the credential's tenant is the request's tenant.

Authentication comes before any lookup by name, so an anonymous caller cannot probe which tenants
exist. Then: missing, ``provisioning`` or ``inactive`` → 404; ``suspended`` → 403.

Caching: tenants (by slug, id, subdomain, domain), device-key prefixes and key rows are kept in
process for ``tenant_cache_seconds`` (default 2 s), so a status or plan change reaches every API
process within that time; writers in this process (and, with Redis, in any process) drop the
copies at once through :meth:`camcount.cache.Cache.invalidate_tenant`. Behind the in-process copy,
tenant records are shared through the :class:`camcount.cache.Cache` (Redis when configured) under
the tenant-prefixed key ``t:{id}:tenant`` (and ``g:tenant-slug:{slug}`` → id), for the same TTL,
so N API processes load a tenant from the database once per TTL instead of N times.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from camcount.accounts import device_keys
from camcount.accounts.key_usage import KeyUsage
from camcount.accounts.roles import Role
from camcount.accounts.tokens import TokenService
from camcount.cache import Cache
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import AmbiguousTenant, AuthenticationFailed, NotFound, TenantSuspended
from camcount.tenancy.models import TENANT_COLUMNS, Placement, Status, Tenant, tenant_from_row
from camcount.tenancy.validation import RESERVED_SLUGS

PrincipalKind = Literal["user", "device", "operator"]
# Device-key prefix -> tenant: immutable once written, so it may be kept longer.
DIRECTORY_TTL = 60.0
_MAX_ENTRIES = 100_000
# What an unknown `{label}.{base_domain}` host names: never a slug, so always the missing tenant's 404.
UNKNOWN_HOST = "<unknown host>"


class TenantNotFound(NotFound):
    """A missing tenant and one that is not the caller's: one class, one constant message."""

    def __init__(self) -> None:
        super().__init__("no such tenant, or it is not accessible with this credential")


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    subject_id: int | str
    role: Role | None
    site_id: int | None = None
    camera_id: int | None = None


@dataclass(frozen=True)
class Credential:
    """An authenticated credential, before it is matched against the named tenant."""

    tenant_id: int
    principal: Principal


@dataclass(frozen=True)
class _DeviceKeyRow:
    id: int
    key_hash: str
    site_id: int | None
    camera_id: int | None
    revoked: bool


class _TtlMap:
    """A plain dict with expiry: the fastest thing that can hold the hot path's lookups."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> tuple[bool, Any]:
        entry = self._data.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key: Any, value: Any) -> None:
        if len(self._data) >= _MAX_ENTRIES:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)

    def drop_where(self, predicate: Any) -> None:
        for key in [k for k, (_, v) in self._data.items() if predicate(k, v)]:
            del self._data[key]

    def clear(self) -> None:
        self._data.clear()


class TenantResolver:
    def __init__(
        self,
        db: Database,
        tokens: TokenService,
        *,
        base_domain: str | None,
        ttl: float,
        shared: Cache | None = None,
        key_usage: KeyUsage | None = None,
    ) -> None:
        self.db = db
        self.tokens = tokens
        self.key_usage = key_usage  # notes each device key's use (api_keys.last_used_at)
        self.ttl = ttl
        self.shared = shared if ttl > 0 else None  # the second level (Redis across processes)
        self.base_domain = base_domain.lower().strip(".") if base_domain else None
        self._by_slug = _TtlMap(ttl)  # slug -> Tenant | None
        self._by_id = _TtlMap(ttl)  # id -> Tenant | None
        self._by_host = _TtlMap(ttl)  # host -> slug | None
        self._directory = _TtlMap(DIRECTORY_TTL)  # prefix -> tenant id | None
        self._keys = _TtlMap(ttl)  # (tenant id, prefix) -> _DeviceKeyRow | None

    # -- invalidation ------------------------------------------------------------------------

    def invalidate(self, tenant_id: int | None) -> None:
        """Forget what is cached about a tenant (None: everything). Registered with the cache."""
        if tenant_id is None:
            for table in (self._by_slug, self._by_id, self._by_host, self._directory, self._keys):
                table.clear()
            return
        self._by_slug.drop_where(lambda _k, v: v is None or v.id == tenant_id)
        self._by_id.drop_where(lambda k, _v: k == tenant_id)
        self._by_host.clear()
        self._keys.drop_where(lambda k, _v: k[0] == tenant_id)
        self._directory.drop_where(lambda _k, v: v is None or v == tenant_id)

    # -- lookups -------------------------------------------------------------------------------

    async def _fetch_tenant(
        self, column: Literal["slug", "id", "subdomain", "domain"], value: Any
    ) -> Tenant | None:
        query = f"SELECT {TENANT_COLUMNS} FROM control.tenants WHERE {column} = %s"  # noqa: S608 (constants)
        pool = await self.db.app_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(query.encode(), (value,))
            row = await cur.fetchone()
            await conn.rollback()
        return tenant_from_row(row) if row else None

    async def _shared_tenant(self, tenant_id: int | None, slug: str | None = None) -> Tenant | None:
        """The shared cache's copy (by id, or by slug through the slug index), None on a miss."""
        if self.shared is None:
            return None
        if tenant_id is None:
            found = await self.shared.get(None, f"tenant-slug:{slug}")
            if not isinstance(found, int):
                return None
            tenant_id = found
        data = await self.shared.get(tenant_id, "tenant")
        if not isinstance(data, dict) or (slug is not None and data.get("slug") != slug):
            return None
        return tenant_from_shared(data)

    async def _share(self, tenant: Tenant) -> None:
        if self.shared is not None:
            await self.shared.set(tenant.id, "tenant", tenant.public_dict(), self.ttl)
            await self.shared.set(None, f"tenant-slug:{tenant.slug}", tenant.id, self.ttl)

    def _remember(self, tenant: Tenant | None, slug: str | None = None) -> None:
        if tenant is not None:
            self._by_slug.put(tenant.slug, tenant)
            self._by_id.put(tenant.id, tenant)
        elif slug is not None:
            self._by_slug.put(slug, None)

    async def tenant_by_slug(self, slug: str) -> Tenant | None:
        hit, cached = self._by_slug.get(slug)
        if hit:
            return cached  # type: ignore[no-any-return]
        tenant: Tenant | None = None
        if 3 <= len(slug) <= 50 and (tenant := await self._shared_tenant(None, slug)) is None:
            tenant = await self._fetch_tenant("slug", slug)
            if tenant is not None:
                await self._share(tenant)
        self._remember(tenant, slug)
        return tenant

    async def tenant_by_id(self, tenant_id: int) -> Tenant | None:
        hit, cached = self._by_id.get(tenant_id)
        if hit:
            return cached  # type: ignore[no-any-return]
        tenant = await self._shared_tenant(tenant_id)
        if tenant is None:
            tenant = await self._fetch_tenant("id", tenant_id)
            if tenant is not None:
                await self._share(tenant)
        if tenant is None:
            self._by_id.put(tenant_id, None)
        self._remember(tenant)
        return tenant

    async def slug_for_host(self, host: str | None) -> str | None:
        """The slug a Host header names, or None when the host is no tenant's."""
        if not host:
            return None
        name = _host_name(host)
        if name is None:
            return None
        hit, slug = self._by_host.get(name)
        if hit:
            return slug  # type: ignore[no-any-return]
        tenant: Tenant | None = None
        label: str | None = None
        if self.base_domain and name.endswith("." + self.base_domain):
            label = name[: -len(self.base_domain) - 1]
            if "." not in label:
                tenant = await self._fetch_tenant("subdomain", label)
        if tenant is None:
            tenant = await self._fetch_tenant("domain", name)
        self._remember(tenant)
        named: str | None = None  # our own host names (api., www.) and unknown custom domains
        if tenant is not None:
            named = tenant.slug
        elif label is not None and "." not in label and label not in RESERVED_SLUGS:
            named = UNKNOWN_HOST  # a tenant's host name, of no tenant: as a missing slug
        self._by_host.put(name, named)
        return named

    # -- authentication ------------------------------------------------------------------------

    async def authenticate(self, credential: str | None) -> Credential:
        if not credential:
            raise AuthenticationFailed("authentication required: send Authorization: Bearer <token or key>")
        if device_keys.is_device_key(credential):
            return await self._authenticate_device(credential)
        claims = self.tokens.verify(credential)
        return Credential(claims.tenant_id, Principal("user", claims.user_id, claims.role))

    async def _authenticate_device(self, credential: str) -> Credential:
        presented = device_keys.parse(credential)
        tenant_id = await self._directory_lookup(presented.prefix)
        tenant = await self.tenant_by_id(tenant_id) if tenant_id is not None else None
        row = await self._key_row(tenant, presented.prefix) if tenant is not None else None
        if row is None or row.revoked or not device_keys.matches(presented, row.key_hash):
            raise AuthenticationFailed("the device key is not valid or has been revoked")
        assert tenant is not None
        if self.key_usage is not None:
            self.key_usage.note(tenant, row.id)
        return Credential(tenant.id, Principal("device", row.id, None, row.site_id, row.camera_id))

    async def _directory_lookup(self, prefix: str) -> int | None:
        hit, tenant_id = self._directory.get(prefix)
        if hit:
            return tenant_id  # type: ignore[no-any-return]
        pool = await self.db.app_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT tenant_id FROM control.device_key_directory WHERE prefix = %s", (prefix,)
            )
            row = await cur.fetchone()
            await conn.rollback()
        tenant_id = int(row[0]) if row else None
        self._directory.put(prefix, tenant_id)
        return tenant_id

    async def _key_row(self, tenant: Tenant, prefix: str) -> _DeviceKeyRow | None:
        if tenant.status in (Status.PROVISIONING, Status.INACTIVE):
            return None
        hit, row = self._keys.get((tenant.id, prefix))
        if hit:
            return row  # type: ignore[no-any-return]
        async with tenant_transaction(self.db, tenant.location) as conn:
            cur = await conn.execute(
                "SELECT id, key_hash, site_id, camera_id, revoked_at IS NOT NULL FROM api_keys WHERE prefix = %s",
                (prefix,),
            )
            found = await cur.fetchone()
        row = _DeviceKeyRow(*found) if found else None
        self._keys.put((tenant.id, prefix), row)
        return row

    # -- the resolver --------------------------------------------------------------------------

    async def resolve(
        self,
        *,
        path_slug: str | None,
        host: str | None,
        header_slug: str | None,
        credential: str | None,
    ) -> tuple[Tenant, Principal]:
        named = await self.named_slug(path_slug=path_slug, host=host, header_slug=header_slug)
        authenticated = await self.authenticate(credential)
        if named is not None:
            tenant = await self.tenant_by_slug(named) if named != UNKNOWN_HOST else None
            if tenant is None or tenant.id != authenticated.tenant_id:
                raise TenantNotFound
        else:
            tenant = await self.tenant_by_id(authenticated.tenant_id)
            if tenant is None:
                raise TenantNotFound
        check_status(tenant)
        return tenant, authenticated.principal

    async def named_slug(
        self, *, path_slug: str | None, host: str | None, header_slug: str | None
    ) -> str | None:
        """The one slug the naming sources agree on, None when none names a tenant."""
        names = {name for name in (path_slug, header_slug.strip().lower() if header_slug else None) if name}
        host_slug = await self.slug_for_host(host)
        if host_slug is not None:
            names.add(host_slug)
        if len(names) > 1:
            raise AmbiguousTenant(
                "the request names its tenant in more than one way (path, host name, X-Tenant) "
                "and they disagree; name one tenant"
            )
        return next(iter(names)) if names else None


def tenant_from_shared(data: dict[str, Any]) -> Tenant:
    """The inverse of :meth:`Tenant.public_dict` (what the shared cache holds)."""
    created, updated = data.get("created_at"), data.get("updated_at")
    return Tenant(
        id=int(data["id"]),
        slug=data["slug"],
        name=data["name"],
        status=Status(data["status"]),
        plan=data["plan"],
        placement=Placement(data["placement"]),
        server=data["server"],
        schema_name=data["schema"],
        database_name=data["database"],
        timezone=data["timezone"],
        billing_cycle=data["billing_cycle"],
        domain=data.get("domain"),
        subdomain=data.get("subdomain"),
        metadata=data.get("metadata") or {},
        created_at=datetime.fromisoformat(created) if created else None,
        updated_at=datetime.fromisoformat(updated) if updated else None,
    )


def check_status(tenant: Tenant) -> None:
    if tenant.status in (Status.PROVISIONING, Status.INACTIVE):
        raise TenantNotFound
    if tenant.status is Status.SUSPENDED:
        raise TenantSuspended(
            "this tenant is suspended: its data is kept but requests are refused; contact your provider"
        )


def _host_name(host: str) -> str | None:
    """The lowercase host name without port; None for IP addresses and single-label names."""
    name = host.strip().lower()
    if name.startswith("["):
        return None  # IPv6 literal
    name = name.rsplit(":", 1)[0] if ":" in name else name
    name = name.rstrip(".")
    if "." not in name or len(name) > 253:
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    return None
