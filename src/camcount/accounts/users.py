"""A tenant's users: create, list, get, update, delete, and log in. All through the tenant scope.

Rules: names are unique per tenant without case; a user may manage only users of a role at or
below their own (an admin cannot create an owner); a tenant keeps at least one active owner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, errors, sql

from camcount.accounts.passwords import hash_password, validate_password, verify_password
from camcount.accounts.roles import Role, may_manage
from camcount.db import crud
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import AuthenticationFailed, Conflict, InvalidInput, PermissionDenied
from camcount.limits.entities import creating_entity, limit_for, reserve_entity
from camcount.tenancy.models import Tenant
from camcount.tenancy.validation import excerpt, validate_choice, validate_pattern

USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
EMAIL_RE = re.compile(r"[^@\s\x00-\x1f]{1,64}@[^@\s\x00-\x1f]{1,189}")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    role: Role
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> User:
        return cls(row[0], row[1], row[2], Role(row[3]), *row[4:])


_COLUMNS = crud.columns_of(User)
_BY_USERNAME = sql.SQL("SELECT {} FROM users WHERE lower(username) = lower(%s)").format(
    crud.identifiers([*_COLUMNS, "password_hash"])
)


def validate_username(value: str) -> str:
    return validate_pattern(
        value,
        USERNAME_RE,
        field="username",
        rule="must be 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
    )


def validate_email(value: str) -> str:
    value = value.strip()
    if not 3 <= len(value) <= 254 or not EMAIL_RE.fullmatch(value) or "." not in value.rsplit("@", 1)[1]:
        raise InvalidInput("email", f"{excerpt(value)} is not an email address such as ana@example.com")
    return value


def parse_role(value: str | Role) -> Role:
    return Role(validate_choice(str(value), [r.value for r in Role], "role"))


@dataclass(frozen=True)
class UserRequest:
    username: str
    email: str
    role: Role
    password: str

    @classmethod
    def parse(cls, *, username: str, email: str, role: str | Role, password: str) -> UserRequest:
        return cls(
            validate_username(username), validate_email(email), parse_role(role), validate_password(password)
        )


@dataclass(frozen=True)
class UserChanges:
    email: str | None = None
    role: Role | None = None
    password: str | None = None
    is_active: bool | None = None

    @classmethod
    def parse(
        cls,
        *,
        email: str | None = None,
        role: str | Role | None = None,
        password: str | None = None,
        is_active: bool | None = None,
    ) -> UserChanges:
        return cls(
            validate_email(email) if email is not None else None,
            parse_role(role) if role is not None else None,
            validate_password(password) if password is not None else None,
            is_active,
        )


async def create_user(
    db: Database, tenant: Tenant, request: UserRequest, *, actor: str, actor_role: Role | None = None
) -> User:
    """``actor_role`` None: the operator (CLI), who may create any role."""
    if actor_role is not None and not may_manage(actor_role, request.role):
        raise PermissionDenied(f"a {actor_role} may not create a user with the role {request.role}")
    password_hash = await hash_password(request.password)
    async with creating_entity(db, tenant, "users") as conn:
        values = {
            "tenant_id": tenant.id,
            "username": request.username,
            "email": request.email,
            "role": request.role,
            "password_hash": password_hash,
        }
        try:
            row = await crud.insert_row(conn, table="users", values=values, returning=_COLUMNS)
        except errors.UniqueViolation as exc:
            field = "email" if "email" in str(exc) else "username"
            raise Conflict(f"{field}: another user of this tenant already has it") from None
    return User.from_row(row)


async def list_users(
    db: Database,
    tenant: Tenant,
    *,
    after_id: int,
    limit: int,
    role: Role | None = None,
    active: bool | None = None,
) -> list[User]:
    filters = [crud.equals("role", role), crud.equals("is_active", active)]
    async with tenant_transaction(db, tenant.location) as conn:
        rows = await crud.fetch_page(
            conn, table="users", columns=_COLUMNS, after_id=after_id, limit=limit, filters=filters
        )
    return [User.from_row(row) for row in rows]


async def _get(conn: AsyncConnection, user_id: int, *, lock: bool = False) -> User:
    return User.from_row(
        await crud.fetch_row(conn, table="users", columns=_COLUMNS, id=user_id, what="user", lock=lock)
    )


async def get_user(db: Database, tenant: Tenant, user_id: int) -> User:
    async with tenant_transaction(db, tenant.location) as conn:
        return await _get(conn, user_id)


async def _ensure_an_owner_remains(conn: AsyncConnection, user_id: int) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('camcount.owners'), 0)")
    cur = await conn.execute(
        "SELECT count(*) FROM users WHERE role = 'owner' AND is_active AND id <> %s", (user_id,)
    )
    row = await cur.fetchone()
    if not row or row[0] == 0:
        raise Conflict("a tenant must keep at least one active owner")


async def update_user(
    db: Database, tenant: Tenant, user_id: int, changes: UserChanges, *, actor_role: Role | None = None
) -> User:
    password_hash = await hash_password(changes.password) if changes.password is not None else None
    async with tenant_transaction(db, tenant.location) as conn:
        current = await _get(conn, user_id, lock=True)
        if actor_role is not None:
            if not may_manage(actor_role, current.role):
                raise PermissionDenied(f"a {actor_role} may not change a user with the role {current.role}")
            if changes.role is not None and not may_manage(actor_role, changes.role):
                raise PermissionDenied(f"a {actor_role} may not grant the role {changes.role}")
        losing_owner = (
            current.role is Role.OWNER
            and current.is_active
            and ((changes.role is not None and changes.role is not Role.OWNER) or changes.is_active is False)
        )
        if losing_owner:
            await _ensure_an_owner_remains(conn, user_id)
        if changes.is_active and not current.is_active:
            await reserve_entity(conn, tenant.id, "users", await limit_for(db, tenant.id, "users"))
        columns = {
            "updated_at": crud.NOW,
            "email": changes.email,
            "role": changes.role,
            "password_hash": password_hash,
            "is_active": changes.is_active,
        }
        try:
            row = await crud.update_row(
                conn, table="users", id=user_id, changes=columns, returning=_COLUMNS, what="user"
            )
        except errors.UniqueViolation:
            raise Conflict("email: another user of this tenant already has it") from None
    return User.from_row(row)


async def delete_user(db: Database, tenant: Tenant, user_id: int, *, actor_role: Role | None = None) -> None:
    async with tenant_transaction(db, tenant.location) as conn:
        current = await _get(conn, user_id, lock=True)
        if actor_role is not None and not may_manage(actor_role, current.role):
            raise PermissionDenied(f"a {actor_role} may not delete a user with the role {current.role}")
        if current.role is Role.OWNER and current.is_active:
            await _ensure_an_owner_remains(conn, user_id)
        await crud.delete_row(conn, table="users", id=user_id, what="user")


async def authenticate(db: Database, tenant: Tenant, username: str, password: str) -> User:
    """The user for these credentials, or AuthenticationFailed (the same for every failure)."""
    failure = AuthenticationFailed("wrong username or password")
    if not USERNAME_RE.fullmatch(username):
        await verify_password(None, password)
        raise failure
    async with tenant_transaction(db, tenant.location) as conn:
        cur = await conn.execute(_BY_USERNAME, (username,))
        row = await cur.fetchone()
    stored = row[-1] if row else None
    if not await verify_password(stored, password) or row is None or not row[4]:
        raise failure
    async with tenant_transaction(db, tenant.location) as conn:
        await conn.execute("UPDATE users SET last_login_at = now() WHERE id = %s", (row[0],))
    return User.from_row(row[:-1])
