"""Operator tokens for ``/admin``: created from the CLI, shown once, stored as prefix + hash.

Format ``op_<prefix>_<secret>`` (256 random bits, hashed like device keys: see
:mod:`camcount.accounts.device_keys`). Creating and revoking are audited owner actions; the API
verifies with the application role, which may read only the columns it needs. Verified tokens are
cached for a few seconds, so a revocation takes effect in every process within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import errors

from camcount.accounts.key_usage import OperatorTokenUsage
from camcount.db.pools import Database
from camcount.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from camcount.tenancy import audit

_TOKEN_RE = re.compile(r"op_([A-Za-z0-9]{8,32})_([A-Za-z0-9_-]{43})")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_ALPHABET = string.ascii_letters + string.digits
VERIFY_TTL = 5.0


@dataclass(frozen=True)
class OperatorToken:
    id: int
    name: str
    prefix: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = None  # written by the API within a minute of a use

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "prefix": self.prefix, "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }  # fmt: skip


def _digest(prefix: str, secret: str) -> str:
    return "sha256$" + hashlib.sha256(f"camcount-operator-token:v1:{prefix}:{secret}".encode()).hexdigest()


def validate_operator_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            "name", "must be 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    return name


async def create_token(db: Database, name: str, *, actor: str) -> tuple[OperatorToken, str]:
    """A new token; the plaintext is returned once and never stored."""
    validate_operator_name(name)
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    secret = secrets.token_urlsafe(32)
    async with db.owner() as conn, conn.transaction():
        try:
            cur = await conn.execute(
                """
                INSERT INTO control.operator_tokens (name, prefix, token_hash, created_by) VALUES (%s, %s, %s, %s)
                RETURNING id, name, prefix, created_by, created_at, revoked_at
                """,
                (name, prefix, _digest(prefix, secret), actor),
            )
        except errors.UniqueViolation:
            raise Conflict(
                f"an operator token named {name!r} exists; revoke it or choose another name"
            ) from None
        row = await cur.fetchone()
        assert row is not None
        await audit.record(
            conn, actor=actor, action="operator_token.create", tenant_id=None, tenant_slug=None,
            after={"name": name, "prefix": prefix},
        )  # fmt: skip
    return OperatorToken(*row), f"op_{prefix}_{secret}"


async def list_tokens(db: Database) -> list[OperatorToken]:
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT id, name, prefix, created_by, created_at, revoked_at, last_used_at FROM control.operator_tokens "
            "ORDER BY name"
        )
        return [OperatorToken(*row) for row in await cur.fetchall()]


async def revoke_token(db: Database, name: str, *, actor: str) -> OperatorToken:
    """Revoked tokens stop working within a few seconds; their names can then be reused."""
    validate_operator_name(name)
    async with db.owner() as conn, conn.transaction():
        cur = await conn.execute(
            """
            DELETE FROM control.operator_tokens WHERE name = %s
            RETURNING id, name, prefix, created_by, created_at, now(), last_used_at
            """,
            (name,),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no operator token named {name!r}")
        await audit.record(
            conn, actor=actor, action="operator_token.revoke", tenant_id=None, tenant_slug=None,
            before={"name": name, "prefix": row[2]},
        )  # fmt: skip
    return OperatorToken(*row)


class OperatorService:
    """Verifies operator tokens for the API, with a short cache, and notes each use."""

    def __init__(self, db: Database, usage: OperatorTokenUsage | None = None) -> None:
        self.db = db
        self.usage = usage  # last_used_at, written now and then (camcount.accounts.key_usage)
        self._verified: dict[str, tuple[float, str, str]] = {}  # token -> (expiry, name, prefix)

    async def verify(self, token: str) -> str:
        entry = self._verified.get(token)
        if entry is not None and entry[0] > time.monotonic():
            if self.usage is not None:
                self.usage.note(entry[2])
            return entry[1]
        match = _TOKEN_RE.fullmatch(token)
        if match is None:
            raise AuthenticationFailed("an operator token is required for /admin")
        prefix, secret = match.groups()
        pool = await self.db.app_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT name, token_hash FROM control.operator_tokens WHERE prefix = %s AND revoked_at IS NULL",
                (prefix,),
            )
            row = await cur.fetchone()
            await conn.rollback()
        if row is None or not hmac.compare_digest(_digest(prefix, secret), row[1]):
            raise AuthenticationFailed("the operator token is not valid or has been revoked")
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (time.monotonic() + VERIFY_TTL, row[0], prefix)
        if self.usage is not None:
            self.usage.note(prefix)
        return str(row[0])
