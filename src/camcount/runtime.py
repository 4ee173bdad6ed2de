"""Opening camcount's connection to PostgreSQL for a command or the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from camcount.config import Settings, get_settings
from camcount.db.conninfo import resolve_owner_url
from camcount.db.pools import Database
from camcount.errors import ConfigurationError
from camcount.secretbox import SecretBox, secret_box
from camcount.tenancy.servers import load_servers


def optional_secret_box(settings: Settings) -> SecretBox | None:
    """The secret box, or None when no key is configured (reading plain values still works)."""
    try:
        return secret_box(settings)
    except ConfigurationError:
        return None


@asynccontextmanager
async def open_database(settings: Settings | None = None, *, load: bool = True) -> AsyncIterator[Database]:
    """A :class:`Database` for the configured (or embedded) server, with registered servers loaded."""
    settings = settings or get_settings()
    if settings.database_url is None:
        secret_box(settings)  # the embedded installation's key exists from the first run on
    # Starting the embedded server blocks for a moment; keep the event loop free meanwhile.
    owner_url = await asyncio.to_thread(resolve_owner_url, settings)
    db = Database(settings, owner_url)
    try:
        if load:
            await load_servers(db, optional_secret_box(settings))
        yield db
    finally:
        await db.close()
