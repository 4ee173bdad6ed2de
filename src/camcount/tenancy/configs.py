"""Typed tenant configuration; secret values encrypted at rest.

Values are validated against their type on write and stored in a canonical text form. Secret
values are stored only as Fernet ciphertext and are returned masked unless explicitly revealed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from camcount.db.pools import Database
from camcount.errors import InvalidInput, NotFound
from camcount.secretbox import SecretBox
from camcount.tenancy import audit
from camcount.tenancy.lifecycle import lock_tenant_slug, require_tenant
from camcount.tenancy.validation import validate_choice, validate_config_key

VALUE_TYPES = ("string", "integer", "boolean", "json")
MAX_VALUE_LENGTH = 65_536
MASK = "********"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class ConfigEntry:
    key: str
    value_type: str
    is_secret: bool
    value: Any  # typed (int, bool, parsed JSON, str); MASK for a secret not revealed

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.value_type, "secret": self.is_secret, "value": self.value}


def canonical_value(raw: str, value_type: str) -> str:
    """The stored text form of ``raw`` for its type, or InvalidInput saying what is wrong."""
    validate_choice(value_type, VALUE_TYPES, "type")
    if len(raw) > MAX_VALUE_LENGTH:
        raise InvalidInput("value", f"is {len(raw)} characters long; the limit is {MAX_VALUE_LENGTH}")
    if "\x00" in raw:
        raise InvalidInput("value", "must not contain NUL characters")
    if value_type == "integer":
        try:
            number = int(raw.strip())
        except ValueError:
            raise InvalidInput("value", f"{raw[:40]!r} is not an integer") from None
        if not -(2**63) <= number < 2**63:
            raise InvalidInput("value", "is outside the 64-bit integer range")
        return str(number)
    if value_type == "boolean":
        word = raw.strip().lower()
        if word in _TRUE:
            return "true"
        if word in _FALSE:
            return "false"
        raise InvalidInput("value", f"{raw[:40]!r} is not a boolean (true/false, yes/no, 1/0, on/off)")
    if value_type == "json":
        try:
            return json.dumps(json.loads(raw), separators=(",", ":"), sort_keys=True)
        except (ValueError, RecursionError):
            raise InvalidInput("value", "is not valid JSON") from None
    return raw


def typed_value(text: str, value_type: str) -> Any:
    if value_type == "integer":
        return int(text)
    if value_type == "boolean":
        return text == "true"
    if value_type == "json":
        return json.loads(text)
    return text


async def set_config(
    db: Database,
    slug: str,
    key: str,
    raw_value: str,
    *,
    value_type: str = "string",
    secret: bool = False,
    box: SecretBox | None = None,
    actor: str,
) -> ConfigEntry:
    validate_config_key(key)
    text = canonical_value(raw_value, value_type)
    if secret and box is None:
        raise InvalidInput("secret", "no secret key is configured")
    ciphertext = box.encrypt(text) if secret and box is not None else None
    async with db.owner() as conn, conn.transaction():
        await lock_tenant_slug(conn, slug)
        tenant = await require_tenant(conn, slug)
        before = await _load(conn, tenant.id, key)
        await conn.execute(
            """
            INSERT INTO control.tenant_configs (tenant_id, key, value_type, value, secret_ciphertext, is_secret)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (tenant_id, key) DO UPDATE SET value_type = EXCLUDED.value_type, value = EXCLUDED.value,
                secret_ciphertext = EXCLUDED.secret_ciphertext, is_secret = EXCLUDED.is_secret, updated_at = now()
            """,
            (tenant.id, key, value_type, None if secret else text, ciphertext, secret),
        )
        after = ConfigEntry(key, value_type, secret, MASK if secret else typed_value(text, value_type))
        await audit.record(
            conn, actor=actor, action="tenant.config.set", tenant_id=tenant.id, tenant_slug=slug,
            before=before.as_dict() if before else None, after=after.as_dict(),
        )  # fmt: skip
    return after


async def get_config(
    db: Database, slug: str, key: str, *, reveal: bool = False, box: SecretBox | None = None
) -> ConfigEntry:
    validate_config_key(key)
    async with db.owner() as conn:
        tenant = await require_tenant(conn, slug)
        entry = await _load(conn, tenant.id, key, reveal=reveal, box=box)
    if entry is None:
        raise NotFound(f"tenant {slug!r} has no configuration key {key!r}")
    return entry


async def list_configs(
    db: Database, slug: str, *, reveal: bool = False, box: SecretBox | None = None
) -> list[ConfigEntry]:
    async with db.owner() as conn:
        tenant = await require_tenant(conn, slug)
        cur = await conn.execute(
            "SELECT key, value_type, value, secret_ciphertext FROM control.tenant_configs WHERE tenant_id = %s "
            "ORDER BY key",
            (tenant.id,),
        )
        return [_entry(*row, reveal=reveal, box=box) for row in await cur.fetchall()]


async def unset_config(db: Database, slug: str, key: str, *, actor: str) -> None:
    validate_config_key(key)
    async with db.owner() as conn, conn.transaction():
        await lock_tenant_slug(conn, slug)
        tenant = await require_tenant(conn, slug)
        before = await _load(conn, tenant.id, key)
        if before is None:
            raise NotFound(f"tenant {slug!r} has no configuration key {key!r}")
        await conn.execute(
            "DELETE FROM control.tenant_configs WHERE tenant_id = %s AND key = %s", (tenant.id, key)
        )
        await audit.record(
            conn, actor=actor, action="tenant.config.unset", tenant_id=tenant.id, tenant_slug=slug,
            before=before.as_dict(),
        )  # fmt: skip


async def rotate_secrets(db: Database, box: SecretBox) -> int:
    """Re-encrypt every secret value under the current key. Returns how many were rewritten."""
    async with db.owner() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT tenant_id, key, secret_ciphertext FROM control.tenant_configs WHERE is_secret FOR UPDATE"
        )
        rows = await cur.fetchall()
        for tenant_id, key, token in rows:
            await conn.execute(
                "UPDATE control.tenant_configs SET secret_ciphertext = %s, updated_at = now() "
                "WHERE tenant_id = %s AND key = %s",
                (box.rotate(bytes(token)), tenant_id, key),
            )
        cur = await conn.execute(
            "SELECT name, url_ciphertext FROM control.database_servers WHERE url_ciphertext IS NOT NULL FOR UPDATE"
        )
        servers = await cur.fetchall()
        for name, token in servers:
            await conn.execute(
                "UPDATE control.database_servers SET url_ciphertext = %s WHERE name = %s",
                (box.rotate(bytes(token)), name),
            )
    return len(rows) + len(servers)


async def _load(
    conn: AsyncConnection, tenant_id: int, key: str, *, reveal: bool = False, box: SecretBox | None = None
) -> ConfigEntry | None:
    cur = await conn.execute(
        "SELECT key, value_type, value, secret_ciphertext FROM control.tenant_configs WHERE tenant_id = %s AND key = %s",
        (tenant_id, key),
    )
    row = await cur.fetchone()
    return _entry(*row, reveal=reveal, box=box) if row else None


def _entry(
    key: str,
    value_type: str,
    value: str | None,
    ciphertext: bytes | None,
    *,
    reveal: bool,
    box: SecretBox | None,
) -> ConfigEntry:
    if ciphertext is None:
        assert value is not None
        return ConfigEntry(key, value_type, False, typed_value(value, value_type))
    if not reveal:
        return ConfigEntry(key, value_type, True, MASK)
    if box is None:
        raise InvalidInput("reveal", "no secret key is configured to decrypt this value")
    return ConfigEntry(key, value_type, True, typed_value(box.decrypt(bytes(ciphertext)), value_type))
