"""Response and request models shared by the tenant routes. Never a hash, secret or internal column."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from camcount.accounts.roles import Role
from camcount.counting.cameras import MAX_LOCATION

# Length bounds checked before the actions' own validators, and shown in the OpenAPI schema.
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
TimeZone = Annotated[str, Field(max_length=64)]
Location = Annotated[str, Field(max_length=MAX_LOCATION)]
Status = Annotated[str, Field(max_length=20)]
Email = Annotated[str, Field(min_length=3, max_length=254)]
Password = Annotated[str, Field(min_length=8, max_length=256)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteIn(Strict):
    name: Name
    timezone: Annotated[TimeZone | None, Field(description="IANA time zone; default: the tenant's")] = None
    business_hours: dict[str, Any] | None = Field(
        default=None, description='{"mon": [["08:00", "20:00"]], ...} in local time; empty = always open'
    )


class SitePatch(Strict):
    name: Name | None = None
    timezone: TimeZone | None = None
    business_hours: dict[str, Any] | None = None


class SiteOut(BaseModel):
    id: int
    name: str
    timezone: str
    business_hours: dict[str, list[list[str]]]
    created_at: datetime
    updated_at: datetime


class CameraIn(Strict):
    site_id: Id
    name: Name
    location: Location | None = None
    status: Annotated[Status | None, Field(description="active, inactive or maintenance")] = None
    config: dict[str, Any] | None = Field(default=None, description="counting line and detector settings")


class CameraPatch(Strict):
    site_id: Id | None = None
    name: Name | None = None
    location: Location | None = None
    status: Status | None = None
    config: dict[str, Any] | None = None


class CameraOut(BaseModel):
    id: int
    site_id: int
    name: str
    location: str | None
    status: str
    config: dict[str, Any]
    last_delivery_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UserIn(Strict):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    email: Email
    role: Role = Role.USER
    password: Password


class UserPatch(Strict):
    email: Email | None = None
    role: Role | None = None
    password: Password | None = None
    is_active: bool | None = None


class UserOut(BaseModel):
    id: int
    username: str
    email: str
    role: Role
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class KeyIn(Strict):
    name: Name
    site_id: Id | None = None
    camera_id: Id | None = None


class KeyPatch(Strict):
    name: Name


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    site_id: int | None
    camera_id: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="The device key. Shown this once: store it now.")
