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
from camcount.db import crud
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import InvalidInput
from camcount.limits.entities import creating_entity
from camcount.tenancy.models import Tenant
from camcount.tenancy.validation import validate_name


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


_COLUMNS = crud.columns_of(DeviceKey)


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
    async with db.app_control() as conn, conn.transaction():
        await conn.execute(statement, params)


async def _forget(db: Database, prefix: str) -> None:
    await _directory(db, "DELETE FROM control.device_key_directory WHERE prefix = %s", (prefix,))


async def create_key(db: Database, tenant: Tenant, request: KeyRequest) -> tuple[DeviceKey, str]:
    """The new key and its plaintext, which is returned this once and never stored."""
    new = device_keys.generate()
    await _directory(
        db,
        "INSERT INTO control.device_key_directory (prefix, tenant_id) VALUES (%s, %s)",
        (new.prefix, tenant.id),
    )
    values = {
        "tenant_id": tenant.id,
        "name": request.name,
        "prefix": new.prefix,
        "key_hash": new.key_hash,
        "site_id": request.site_id,
        "camera_id": request.camera_id,
    }
    try:
        async with creating_entity(db, tenant, "api_keys") as conn:
            try:
                row = await crud.insert_row(conn, table="api_keys", values=values, returning=_COLUMNS)
            except errors.ForeignKeyViolation:
                field = "site_id" if request.site_id is not None else "camera_id"
                raise InvalidInput(field, f"no such {field.removesuffix('_id')}") from None
    except BaseException:
        await _forget(db, new.prefix)
        raise
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
    filters = [
        crud.equals("site_id", site_id),
        crud.equals("camera_id", camera_id),
        crud.is_set("revoked_at", revoked),
    ]
    async with tenant_transaction(db, tenant.location) as conn:
        rows = await crud.fetch_page(
            conn, table="api_keys", columns=_COLUMNS, after_id=after_id, limit=limit, filters=filters
        )
    return [_key(row) for row in rows]


async def get_key(db: Database, tenant: Tenant, key_id: int) -> DeviceKey:
    async with tenant_transaction(db, tenant.location) as conn:
        row = await crud.fetch_row(conn, table="api_keys", columns=_COLUMNS, id=key_id, what="key")
    return _key(row)


async def rename_key(db: Database, tenant: Tenant, key_id: int, name: str) -> DeviceKey:
    return await _change(db, tenant, key_id, {"name": validate_name(name)})


async def revoke_key(db: Database, tenant: Tenant, key_id: int) -> DeviceKey:
    """Stops the key at once in this process and within seconds in every other; idempotent."""
    key = await _change(db, tenant, key_id, {"revoked_at": sql.SQL("coalesce(revoked_at, now())")})
    await _forget(db, key.prefix)
    return key


async def _change(db: Database, tenant: Tenant, key_id: int, changes: dict[str, object]) -> DeviceKey:
    async with tenant_transaction(db, tenant.location) as conn:
        row = await crud.update_row(
            conn, table="api_keys", id=key_id, changes=changes, returning=_COLUMNS, what="key"
        )
    return _key(row)


async def delete_key(db: Database, tenant: Tenant, key_id: int) -> None:
    async with tenant_transaction(db, tenant.location) as conn:
        (prefix,) = await crud.delete_row(conn, table="api_keys", id=key_id, what="key", returning=["prefix"])
    await _forget(db, prefix)
