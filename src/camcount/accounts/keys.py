"""Device keys of a tenant: create (shown once), list, get, rename, revoke, delete.

A key row lives in the tenant's placement (``api_keys``: prefix, hash, scope, revocation); its
prefix is also written to ``control.device_key_directory`` in the main database so a presented key
finds its tenant. The two are in different databases for database-placement tenants, so there is
no shared transaction; the order makes every intermediate state safe:

- create: directory row first, then the key row; if the key row fails, the directory row is
  removed again. A directory row without a key row authenticates nothing (resolution verifies the
  hash in the tenant's own table).
- revoke/delete: the key row first (authoritative), then the directory row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import errors, sql

from camcount.accounts import device_keys
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import InvalidInput, NotFound
from camcount.limits.entities import limit_for, reserve_entity
from camcount.tenancy.models import Tenant
from camcount.tenancy.validation import validate_name

_COLUMNS = "id, name, prefix, site_id, camera_id, created_at, last_used_at, revoked_at"


@dataclass(frozen=True)
class DeviceKey:
    id: int
    name: str
    prefix: str
    site_id: int | None
    camera_id: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class KeyRequest:
    name: str
    site_id: int | None
    camera_id: int | None

    @classmethod
    def parse(cls, *, name: str, site_id: int | None = None, camera_id: int | None = None) -> KeyRequest:
        if (site_id is None) == (camera_id is None):
            raise InvalidInput("site_id", "give exactly one of site_id and camera_id: the key's scope")
        for field, value in (("site_id", site_id), ("camera_id", camera_id)):
            if value is not None and not 0 < value < 2**63:
                raise InvalidInput(field, "must be a positive id")
        return cls(validate_name(name), site_id, camera_id)


def _key(row: tuple[Any, ...]) -> DeviceKey:
    return DeviceKey(*row)


async def _directory(db: Database, statement: str, params: tuple[object, ...]) -> None:
    pool = await db.app_pool()
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(statement, params)


async def create_key(db: Database, tenant: Tenant, request: KeyRequest) -> tuple[DeviceKey, str]:
    """The new key and its plaintext, which is returned this once and never stored."""
    new = device_keys.generate()
    limit = await limit_for(db, tenant.id, "api_keys")
    await _directory(
        db,
        "INSERT INTO control.device_key_directory (prefix, tenant_id) VALUES (%s, %s)",
        (new.prefix, tenant.id),
    )
    try:
        async with tenant_transaction(db, tenant.location) as conn:
            await reserve_entity(conn, tenant.id, "api_keys", limit)
            try:
                cur = await conn.execute(
                    f"INSERT INTO api_keys (tenant_id, name, prefix, key_hash, site_id, camera_id) "  # noqa: S608
                    f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}".encode(),
                    (tenant.id, request.name, new.prefix, new.key_hash, request.site_id, request.camera_id),
                )
            except errors.ForeignKeyViolation:
                field = "site_id" if request.site_id is not None else "camera_id"
                raise InvalidInput(field, f"no such {field.removesuffix('_id')}") from None
            row = await cur.fetchone()
    except BaseException:
        await _directory(db, "DELETE FROM control.device_key_directory WHERE prefix = %s", (new.prefix,))
        raise
    assert row is not None
    return _key(row), new.plaintext


async def list_keys(
    db: Database,
    tenant: Tenant,
    *,
    after_id: int,
    limit: int,
    site_id: int | None = None,
    camera_id: int | None = None,
    revoked: bool | None = None,
) -> list[DeviceKey]:
    conditions = [sql.SQL("id > %s")]
    params: list[Any] = [after_id]
    if site_id is not None:
        conditions.append(sql.SQL("site_id = %s"))
        params.append(site_id)
    if camera_id is not None:
        conditions.append(sql.SQL("camera_id = %s"))
        params.append(camera_id)
    if revoked is not None:
        conditions.append(sql.SQL("revoked_at IS NOT NULL" if revoked else "revoked_at IS NULL"))
    query = sql.SQL("SELECT {} FROM api_keys WHERE {} ORDER BY id LIMIT %s").format(
        sql.SQL(_COLUMNS), sql.SQL(" AND ").join(conditions)
    )
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(query, (*params, limit))
        return [_key(row) for row in await cur.fetchall()]


async def get_key(db: Database, tenant: Tenant, key_id: int) -> DeviceKey:
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s".encode(), (key_id,))  # noqa: S608
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"key {key_id} not found")
    return _key(row)


async def rename_key(db: Database, tenant: Tenant, key_id: int, name: str) -> DeviceKey:
    name = validate_name(name)
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(
            f"UPDATE api_keys SET name = %s WHERE id = %s RETURNING {_COLUMNS}".encode(),  # noqa: S608
            (name, key_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"key {key_id} not found")
    return _key(row)


async def revoke_key(db: Database, tenant: Tenant, key_id: int) -> DeviceKey:
    """Stops the key at once in this process and within seconds in every other; idempotent."""
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(
            f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s RETURNING {_COLUMNS}".encode(),  # noqa: S608
            (key_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"key {key_id} not found")
    key = _key(row)
    await _directory(db, "DELETE FROM control.device_key_directory WHERE prefix = %s", (key.prefix,))
    return key


async def delete_key(db: Database, tenant: Tenant, key_id: int) -> None:
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute("DELETE FROM api_keys WHERE id = %s RETURNING prefix", (key_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"key {key_id} not found")
    await _directory(db, "DELETE FROM control.device_key_directory WHERE prefix = %s", (row[0],))
