"""A tenant's sites: a store or a gate, with an IANA time zone and business hours.

Business hours are ``{"mon": [["08:00", "20:00"]], ...}`` in the site's local time, checked by
:mod:`camcount.counting.business_hours` (the same rules the count queries rely on: quarter hours,
so the business-hours filter is exact on 15-minute rollups); an empty object means always open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import errors
from psycopg.types.json import Jsonb

from camcount.counting.business_hours import validate_business_hours
from camcount.db import crud
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import Conflict, InvalidInput
from camcount.limits.entities import creating_entity
from camcount.tenancy.models import Tenant
from camcount.tenancy.validation import validate_name, validate_timezone


@dataclass(frozen=True)
class Site:
    id: int
    name: str
    timezone: str
    business_hours: dict[str, list[list[str]]]
    created_at: datetime
    updated_at: datetime


_COLUMNS = crud.columns_of(Site)


@dataclass(frozen=True)
class SiteFields:
    name: str | None = None
    timezone: str | None = None
    business_hours: dict[str, list[list[str]]] | None = None

    @classmethod
    def parse(
        cls, *, name: str | None = None, timezone: str | None = None, business_hours: Any = None
    ) -> SiteFields:
        return cls(
            validate_name(name) if name is not None else None,
            validate_timezone(timezone) if timezone is not None else None,
            validate_business_hours(business_hours) if business_hours is not None else None,
        )


def _site(row: tuple[Any, ...]) -> Site:
    return Site(*row)


def _name_taken() -> Conflict:
    return Conflict("name: another site of this tenant already has it")


async def create_site(db: Database, tenant: Tenant, fields: SiteFields) -> Site:
    if fields.name is None:
        raise InvalidInput("name", "is required")
    async with creating_entity(db, tenant, "sites") as conn:
        values = {
            "tenant_id": tenant.id,
            "name": fields.name,
            "timezone": fields.timezone or tenant.timezone,
            "business_hours": Jsonb(fields.business_hours or {}),
        }
        try:
            row = await crud.insert_row(conn, table="sites", values=values, returning=_COLUMNS)
        except errors.UniqueViolation:
            raise _name_taken() from None
    return _site(row)


async def list_sites(
    db: Database, tenant: Tenant, *, after_id: int, limit: int, name: str | None = None
) -> list[Site]:
    async with tenant_transaction(db, tenant.location) as conn:
        rows = await crud.fetch_page(
            conn,
            table="sites",
            columns=_COLUMNS,
            after_id=after_id,
            limit=limit,
            filters=[crud.equals("name", name)],
        )
    return [_site(row) for row in rows]


async def get_site(db: Database, tenant: Tenant, site_id: int) -> Site:
    async with tenant_transaction(db, tenant.location) as conn:
        row = await crud.fetch_row(conn, table="sites", columns=_COLUMNS, id=site_id, what="site")
    return _site(row)


async def update_site(db: Database, tenant: Tenant, site_id: int, fields: SiteFields) -> Site:
    hours = Jsonb(fields.business_hours) if fields.business_hours is not None else None
    changes = {
        "updated_at": crud.NOW,
        "name": fields.name,
        "timezone": fields.timezone,
        "business_hours": hours,
    }
    async with tenant_transaction(db, tenant.location) as conn:
        try:
            row = await crud.update_row(
                conn, table="sites", id=site_id, changes=changes, returning=_COLUMNS, what="site"
            )
        except errors.UniqueViolation:
            raise _name_taken() from None
    return _site(row)


async def delete_site(db: Database, tenant: Tenant, site_id: int) -> None:
    async with tenant_transaction(db, tenant.location) as conn:
        try:
            await crud.delete_row(conn, table="sites", id=site_id, what="site")
        except errors.ForeignKeyViolation:
            raise Conflict(f"site {site_id} still has cameras; delete them first") from None
