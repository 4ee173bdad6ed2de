"""Registered PostgreSQL servers for database-placement tenants.

The default server is the one in ``CAMCOUNT_DATABASE_URL`` (or the embedded one). Others are added
with an owner URL that is stored encrypted; adding one prepares its roles and template database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.conninfo import conninfo_to_dict

from camcount.db.conninfo import ServerAddress
from camcount.db.pools import Database
from camcount.errors import Conflict, InvalidInput
from camcount.secretbox import SecretBox
from camcount.tenancy import audit
from camcount.tenancy.bootstrap import migrate_all, prepare_server
from camcount.tenancy.validation import validate_server_name


@dataclass(frozen=True)
class ServerInfo:
    name: str
    is_default: bool
    host: str
    tenants: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "default": self.is_default, "host": self.host, "tenants": self.tenants}


def describe_host(url: str) -> str:
    """Host and port only: never the user or password."""
    params = conninfo_to_dict(url)
    return f"{params.get('host', 'local socket')}:{params.get('port', '5432')}"


async def load_servers(db: Database, box: SecretBox | None) -> None:
    """Register every server in the control plane with ``db`` (decrypting their URLs)."""
    async with db.owner() as conn:
        try:
            cur = await conn.execute(
                "SELECT name, url_ciphertext FROM control.database_servers WHERE url_ciphertext IS NOT NULL"
            )
        except errors.UndefinedTable:
            return  # not initialised yet
        rows = await cur.fetchall()
    for name, token in rows:
        if box is None:
            continue  # their tenants are unreachable until a key is configured; said when used
        db.register_server(ServerAddress(name, box.decrypt(bytes(token))))


async def add_server(db: Database, name: str, url: str, *, box: SecretBox, actor: str) -> ServerInfo:
    validate_server_name(name)
    try:
        conninfo_to_dict(url)
    except Exception:
        raise InvalidInput("url", "is not a PostgreSQL connection URL") from None
    async with db.owner() as conn:
        cur = await conn.execute("SELECT 1 FROM control.database_servers WHERE name = %s", (name,))
        if await cur.fetchone():
            raise Conflict(f"a server named {name!r} is already registered")
    address = ServerAddress(name, url)
    db.register_server(address)
    try:
        await prepare_server(db, name)
        async with db.owner() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO control.database_servers (name, url_ciphertext) VALUES (%s, %s)",
                (name, box.encrypt(url)),
            )
            await audit.record(
                conn, actor=actor, action="server.add", tenant_id=None, tenant_slug=None,
                after={"name": name, "host": describe_host(url)},
            )  # fmt: skip
    except errors.OperationalError:
        raise InvalidInput("url", f"cannot connect to {describe_host(url)} with the given URL") from None
    await migrate_all(db)  # brings the new server's template database to the current versions
    return ServerInfo(name, False, describe_host(url), 0)


async def list_servers(conn: AsyncConnection, db: Database) -> list[ServerInfo]:
    cur = await conn.execute(
        """
        SELECT s.name, s.is_default, count(t.id)
        FROM control.database_servers s LEFT JOIN control.tenants t ON t.server = s.name
        GROUP BY s.name, s.is_default ORDER BY s.name
        """
    )
    infos = []
    for name, is_default, tenants in await cur.fetchall():
        known = name in db.known_servers
        host = describe_host(db.server(name).owner_url) if known else "(URL needs the secret key)"
        infos.append(ServerInfo(name, is_default, host, tenants))
    return infos
