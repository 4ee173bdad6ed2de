"""Connections: the owner's short-lived ones, and the application role's pools.

Pools are per database, never per tenant: pooled and schema tenants share the main database's
pool; each database-placement tenant's database gets a small pool that is opened on first use and
closed when idle (``min_size=0``), with a cap on how many stay open. The application role's pools
carry no tenant state between transactions (see :mod:`camcount.db.scope`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from camcount.config import Settings
from camcount.db.conninfo import ServerAddress, main_database_name
from camcount.errors import ConfigurationError

DEFAULT_SERVER = "default"


@dataclass
class _PoolEntry:
    pool: AsyncConnectionPool
    last_used: float = field(default_factory=time.monotonic)


class Database:
    """How camcount reaches PostgreSQL: the owner URL, registered servers, and the app pools."""

    def __init__(self, settings: Settings, owner_url: str) -> None:
        self.settings = settings
        self.main_dbname = main_database_name(owner_url)
        self.default_server = ServerAddress(DEFAULT_SERVER, owner_url)
        self._servers: dict[str, ServerAddress] = {DEFAULT_SERVER: self.default_server}
        self._pools: dict[tuple[str, str], _PoolEntry] = {}
        self._pools_lock = asyncio.Lock()
        self._owner_main_pool: AsyncConnectionPool | None = None

    # -- servers -----------------------------------------------------------------------------

    def register_server(self, address: ServerAddress) -> None:
        self._servers[address.name] = address

    def server(self, name: str) -> ServerAddress:
        try:
            return self._servers[name]
        except KeyError:
            raise ConfigurationError(f"database server {name!r} is not registered") from None

    @property
    def known_servers(self) -> list[str]:
        return sorted(self._servers)

    # -- owner connections ---------------------------------------------------------------------

    @asynccontextmanager
    async def owner(
        self, dbname: str | None = None, *, server: str = DEFAULT_SERVER
    ) -> AsyncIterator[AsyncConnection]:
        """A connection acting as the owner role: migrations, provisioning, control-plane writes.

        In autocommit: statements outside ``conn.transaction()`` commit at once, and every
        ``conn.transaction()`` is a real transaction (never a savepoint in an implicit one).
        The main database's owner connections come from a small pool; others are opened and closed.
        """
        if server == DEFAULT_SERVER and dbname in (None, self.main_dbname):
            pool = await self._owner_pool()
            async with pool.connection() as conn:
                yield conn
            return
        conn = await AsyncConnection.connect(
            self.server(server).owner(dbname or self.main_dbname), autocommit=True
        )
        try:
            await self._become_owner(conn)
            yield conn
        finally:
            await conn.close()

    async def _become_owner(self, conn: AsyncConnection) -> None:
        await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.settings.owner_role)))

    async def _owner_pool(self) -> AsyncConnectionPool:
        if self._owner_main_pool is None:
            async with self._pools_lock:
                if self._owner_main_pool is None:
                    # Fail fast with the server's own message: a pool would keep retrying quietly.
                    probe = await AsyncConnection.connect(self.default_server.owner(self.main_dbname))
                    await probe.close()
                    pool = AsyncConnectionPool(
                        self.default_server.owner(self.main_dbname),
                        min_size=0,
                        max_size=self.settings.owner_pool_max_size,
                        max_idle=self.settings.pool_idle_seconds,
                        kwargs={"autocommit": True},
                        configure=self._become_owner,
                        name="owner:main",
                        open=False,
                    )
                    await pool.open()
                    self._owner_main_pool = pool
        return self._owner_main_pool

    @asynccontextmanager
    async def login(self, dbname: str, *, server: str = DEFAULT_SERVER) -> AsyncIterator[AsyncConnection]:
        """A connection as the URL's own login, in autocommit: for creating databases and roles."""
        conn = await AsyncConnection.connect(self.server(server).owner(dbname), autocommit=True)
        try:
            yield conn
        finally:
            await conn.close()

    # -- application pools ---------------------------------------------------------------------

    def app_conninfo(self, dbname: str | None = None, server: str = DEFAULT_SERVER) -> str:
        return self.server(server).app(dbname or self.main_dbname, self.settings)

    @asynccontextmanager
    async def app_control(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection as the application role on the main database: the control-plane reads
        and writes it is granted (``camcount.db.roles.grant_control_plane``). Tenant data goes
        through ``camcount.db.scope.tenant_transaction`` instead."""
        pool = await self.app_pool()
        async with pool.connection() as conn:
            yield conn

    async def app_pool(self, server: str = DEFAULT_SERVER, dbname: str | None = None) -> AsyncConnectionPool:
        """The application role's pool for one database, opened on first use."""
        key = (server, dbname or self.main_dbname)
        entry = self._pools.get(key)
        if entry is None:
            async with self._pools_lock:
                entry = self._pools.get(key)
                if entry is None:
                    entry = _PoolEntry(await self._open_pool(*key))
                    self._pools[key] = entry
                    await self._close_surplus_pools()
        entry.last_used = time.monotonic()
        return entry.pool

    async def _open_pool(self, server: str, dbname: str) -> AsyncConnectionPool:
        is_main = server == DEFAULT_SERVER and dbname == self.main_dbname
        pool = AsyncConnectionPool(
            self.app_conninfo(dbname, server),
            min_size=self.settings.pool_min_size if is_main else 0,
            max_size=self.settings.pool_max_size if is_main else max(2, self.settings.pool_max_size // 4),
            max_idle=self.settings.pool_idle_seconds,
            name=f"app:{server}:{dbname}",
            open=False,
        )
        await pool.open(wait=is_main and self.settings.pool_min_size > 0, timeout=30)
        return pool

    async def _close_surplus_pools(self) -> None:
        """Close tenant-database pools idle too long, and the least recently used beyond the cap."""
        now = time.monotonic()
        main_key = (DEFAULT_SERVER, self.main_dbname)
        candidates = sorted(
            ((entry.last_used, key) for key, entry in self._pools.items() if key != main_key),
            reverse=True,
        )
        for rank, (last_used, key) in enumerate(candidates):
            if (
                rank >= self.settings.max_open_tenant_pools
                or now - last_used > self.settings.pool_idle_seconds
            ):
                entry = self._pools.pop(key)
                await entry.pool.close(timeout=5)

    async def close_pool(self, server: str, dbname: str) -> None:
        entry = self._pools.pop((server, dbname), None)
        if entry is not None:
            await entry.pool.close(timeout=5)

    @property
    def open_pool_count(self) -> int:
        return len(self._pools)

    def pool_stats(self) -> list[tuple[str, str, dict[str, int]]]:
        """(server, database, psycopg_pool statistics) of every open application pool."""
        return [
            (server, dbname, dict(entry.pool.get_stats())) for (server, dbname), entry in self._pools.items()
        ]

    async def close(self) -> None:
        entries = list(self._pools.values())
        self._pools.clear()
        for entry in entries:
            await entry.pool.close(timeout=5)
        if self._owner_main_pool is not None:
            await self._owner_main_pool.close(timeout=5)
            self._owner_main_pool = None
