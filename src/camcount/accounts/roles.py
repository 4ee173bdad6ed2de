"""Roles and what each may do: the one permission table (docs/api.md shows it to users).

Each role includes everything the role below it may do: viewer reads; user also manages cameras;
admin also manages users and device keys; owner also manages the tenant's settings. Device keys
are not users: they may only ingest (and read the camera or cameras in their scope).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    USER = "user"
    VIEWER = "viewer"


class Permission(StrEnum):
    READ = "read"
    MANAGE_CAMERAS = "manage_cameras"
    MANAGE_USERS = "manage_users"
    MANAGE_KEYS = "manage_keys"
    MANAGE_SETTINGS = "manage_settings"
    INGEST = "ingest"


_VIEWER = frozenset({Permission.READ})
_USER = _VIEWER | {Permission.MANAGE_CAMERAS, Permission.INGEST}
_ADMIN = _USER | {Permission.MANAGE_USERS, Permission.MANAGE_KEYS}
_OWNER = _ADMIN | {Permission.MANAGE_SETTINGS}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.USER: _USER,
    Role.ADMIN: _ADMIN,
    Role.OWNER: _OWNER,
}
DEVICE_PERMISSIONS = frozenset({Permission.INGEST})
# Roles a role may grant or manage: never above its own rank (an admin cannot create an owner).
RANK = {Role.VIEWER: 0, Role.USER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def allows(role: Role, permission: Permission) -> bool:
    return permission in PERMISSIONS[role]


def may_manage(actor: Role, target: Role) -> bool:
    """Whether ``actor`` may create, change or delete a user holding ``target``."""
    return RANK[actor] >= RANK[target]
