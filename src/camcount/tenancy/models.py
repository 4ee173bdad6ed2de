"""The tenant record as the rest of camcount sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Placement(StrEnum):
    """Where a tenant's tables live. The DDL is the same in all three."""

    POOLED = "pooled"  # the shared `pooled` schema, rows separated by RLS
    SCHEMA = "schema"  # an own schema `t_<id>` in the main database
    DATABASE = "database"  # an own database on a registered server


class Status(StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    INACTIVE = "inactive"


POOLED_SCHEMA = "pooled"
DATABASE_TENANT_SCHEMA = "tenant"


@dataclass(frozen=True)
class TenantLocation:
    """Enough to open a tenant-scoped transaction: which server, database and schema, which id."""

    tenant_id: int
    schema_name: str
    server: str
    database_name: str | None  # None = the main database


@dataclass(frozen=True)
class Tenant:
    id: int
    slug: str
    name: str
    status: Status
    plan: str
    placement: Placement
    server: str
    schema_name: str
    database_name: str | None
    timezone: str
    billing_cycle: str
    domain: str | None = None
    subdomain: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def location(self) -> TenantLocation:
        return TenantLocation(self.id, self.schema_name, self.server, self.database_name)

    def public_dict(self) -> dict[str, Any]:
        """What the operator sees (CLI --json, admin API). No internal secrets live here."""
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "status": str(self.status),
            "plan": self.plan,
            "placement": str(self.placement),
            "server": self.server,
            "schema": self.schema_name,
            "database": self.database_name,
            "domain": self.domain,
            "subdomain": self.subdomain,
            "timezone": self.timezone,
            "billing_cycle": self.billing_cycle,
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


TENANT_COLUMNS = (
    "id, slug, name, status, plan, placement, server, schema_name, database_name, timezone, "
    "billing_cycle, domain, subdomain, metadata, created_at, updated_at"
)


def tenant_from_row(row: tuple[Any, ...]) -> Tenant:
    """Build a Tenant from a row selected with TENANT_COLUMNS (in that order)."""
    (
        id_,
        slug,
        name,
        status,
        plan,
        placement,
        server,
        schema,
        dbname,
        tz,
        cycle,
        domain,
        sub,
        meta,
        ca,
        ua,
    ) = row
    return Tenant(
        id=id_,
        slug=slug,
        name=name,
        status=Status(status),
        plan=plan,
        placement=Placement(placement),
        server=server,
        schema_name=schema,
        database_name=dbname,
        timezone=tz,
        billing_cycle=cycle,
        domain=domain,
        subdomain=sub,
        metadata=meta or {},
        created_at=ca,
        updated_at=ua,
    )
