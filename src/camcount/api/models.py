"""Response and request models shared by the tenant routes. Never a hash, secret or internal column."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from camcount.accounts.roles import Role

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteIn(Strict):
    name: Name
    timezone: Annotated[
        str | None, Field(max_length=64, description="IANA time zone; default: the tenant's")
    ] = None
    business_hours: dict[str, Any] | None = Field(
        default=None, description='{"mon": [["08:00", "20:00"]], ...} in local time; empty = always open'
    )


class SitePatch(Strict):
    name: Name | None = None
    timezone: Annotated[str | None, Field(max_length=64)] = None
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
    location: Annotated[str | None, Field(max_length=500)] = None
    status: Annotated[str | None, Field(max_length=20, description="active, inactive or maintenance")] = None
    config: dict[str, Any] | None = Field(default=None, description="counting line and detector settings")


class CameraPatch(Strict):
    site_id: Id | None = None
    name: Name | None = None
    location: Annotated[str | None, Field(max_length=500)] = None
    status: Annotated[str | None, Field(max_length=20)] = None
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
    email: Annotated[str, Field(min_length=3, max_length=254)]
    role: Role = Role.USER
    password: Annotated[str, Field(min_length=8, max_length=256)]


class UserPatch(Strict):
    email: Annotated[str | None, Field(min_length=3, max_length=254)] = None
    role: Role | None = None
    password: Annotated[str | None, Field(min_length=8, max_length=256)] = None
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
