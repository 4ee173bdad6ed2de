"""A tenant's cameras: each on a site, with the counting configuration the edge worker fetches.

``config`` is a JSON object (counting line, zones, detector settings), at most 16 KiB;
``last_delivery_at`` is set by ingestion. Reading one camera is the hot read path: one round trip
(see :func:`camcount.db.scope.tenant_fetch`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import errors
from psycopg.types.json import Jsonb

from camcount.db import crud
from camcount.db.pools import Database
from camcount.db.scope import tenant_fetch, tenant_transaction
from camcount.errors import Conflict, InvalidInput, NotFound
from camcount.limits.entities import creating_entity
from camcount.tenancy.models import Tenant
from camcount.tenancy.validation import validate_choice, validate_name

STATUSES = ("active", "inactive", "maintenance")
MAX_CONFIG_BYTES = 16_384
MAX_LOCATION = 500


@dataclass(frozen=True)
class Camera:
    id: int
    site_id: int
    name: str
    location: str | None
    status: str
    config: dict[str, Any]
    last_delivery_at: datetime | None
    created_at: datetime
    updated_at: datetime


_COLUMNS = crud.columns_of(Camera)
_GET = crud.select_by_id(table="cameras", columns=_COLUMNS).as_bytes(None)  # composed once: the hot path

DETECTORS = ("motion", "hog", "onnx")
ANCHORS = ("bottom_center", "center")


def validate_config(value: Any) -> dict[str, Any]:
    """A JSON object; the keys the edge worker reads are checked here, so a bad line is refused
    when it is saved rather than when a device fetches it. Other keys are kept as they are."""
    if not isinstance(value, dict):
        raise InvalidInput("config", "must be a JSON object")
    if len(json.dumps(value)) > MAX_CONFIG_BYTES:
        raise InvalidInput("config", f"must be at most {MAX_CONFIG_BYTES} bytes of JSON")
    line = value.get("line")
    if line is not None and not (
        isinstance(line, list)
        and len(line) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 100_000 for v in line)
        and (line[0], line[1]) != (line[2], line[3])
    ):
        raise InvalidInput(
            "config.line", "must be [x1, y1, x2, y2]: four pixel coordinates of two distinct points"
        )
    _check_choice(value, "detector", DETECTORS)
    _check_choice(value, "anchor", ANCHORS)
    interval = value.get("interval_seconds")
    if interval is not None and not (
        isinstance(interval, int) and not isinstance(interval, bool) and 1 <= interval <= 3600
    ):
        raise InvalidInput("config.interval_seconds", "must be a whole number of seconds from 1 to 3600")
    return value


def _check_choice(config: dict[str, Any], key: str, choices: tuple[str, ...]) -> None:
    if key in config and config[key] not in choices:
        raise InvalidInput(f"config.{key}", f"must be one of {', '.join(choices)}")


def validate_location(value: str) -> str:
    if len(value) > MAX_LOCATION or "\x00" in value:
        raise InvalidInput("location", f"must be at most {MAX_LOCATION} characters, without NUL")
    return value


@dataclass(frozen=True)
class CameraFields:
    site_id: int | None = None
    name: str | None = None
    location: str | None = None
    status: str | None = None
    config: dict[str, Any] | None = None

    @classmethod
    def parse(
        cls,
        *,
        site_id: int | None = None,
        name: str | None = None,
        location: str | None = None,
        status: str | None = None,
        config: Any = None,
    ) -> CameraFields:
        if site_id is not None and not 0 < site_id < 2**63:
            raise InvalidInput("site_id", "must be a positive id")
        return cls(
            site_id,
            validate_name(name) if name is not None else None,
            validate_location(location) if location is not None else None,
            validate_choice(status, STATUSES, "status") if status is not None else None,
            validate_config(config) if config is not None else None,
        )


def _camera(row: tuple[Any, ...]) -> Camera:
    return Camera(*row)


def _translate(exc: errors.IntegrityError) -> Exception:
    if isinstance(exc, errors.ForeignKeyViolation):
        return InvalidInput("site_id", "no such site")
    return Conflict("name: another camera of this site already has it")


async def create_camera(db: Database, tenant: Tenant, fields: CameraFields) -> Camera:
    if fields.site_id is None:
        raise InvalidInput("site_id", "is required")
    if fields.name is None:
        raise InvalidInput("name", "is required")
    async with creating_entity(db, tenant, "cameras") as conn:
        values = {
            "tenant_id": tenant.id,
            "site_id": fields.site_id,
            "name": fields.name,
            "location": fields.location,
            "status": fields.status or "active",
            "config": Jsonb(fields.config or {}),
        }
        try:
            row = await crud.insert_row(conn, table="cameras", values=values, returning=_COLUMNS)
        except (errors.ForeignKeyViolation, errors.UniqueViolation) as exc:
            raise _translate(exc) from None
    return _camera(row)


async def list_cameras(
    db: Database,
    tenant: Tenant,
    *,
    after_id: int,
    limit: int,
    site_id: int | None = None,
    status: str | None = None,
    camera_ids: list[int] | None = None,
) -> list[Camera]:
    if status is not None:
        validate_choice(status, STATUSES, "status")
    filters = [crud.equals("site_id", site_id), crud.equals("status", status), crud.any_of("id", camera_ids)]
    async with tenant_transaction(db, tenant.location) as conn:
        rows = await crud.fetch_page(
            conn, table="cameras", columns=_COLUMNS, after_id=after_id, limit=limit, filters=filters
        )
    return [_camera(row) for row in rows]


async def get_camera(db: Database, tenant: Tenant, camera_id: int) -> Camera:
    rows = await tenant_fetch(db, tenant.location, _GET, (camera_id,))
    if not rows:
        raise NotFound(f"camera {camera_id} not found")
    return _camera(rows[0])


async def update_camera(db: Database, tenant: Tenant, camera_id: int, fields: CameraFields) -> Camera:
    changes = {
        "updated_at": crud.NOW,
        "site_id": fields.site_id,
        "name": fields.name,
        "location": fields.location,
        "status": fields.status,
        "config": Jsonb(fields.config) if fields.config is not None else None,
    }
    async with tenant_transaction(db, tenant.location) as conn:
        try:
            row = await crud.update_row(
                conn, table="cameras", id=camera_id, changes=changes, returning=_COLUMNS, what="camera"
            )
        except (errors.ForeignKeyViolation, errors.UniqueViolation) as exc:
            raise _translate(exc) from None
    return _camera(row)


async def delete_camera(db: Database, tenant: Tenant, camera_id: int) -> None:
    """Deletes the camera with its events, rollups and the device keys scoped to it."""
    async with tenant_transaction(db, tenant.location) as conn:
        await crud.delete_row(conn, table="cameras", id=camera_id, what="camera")
