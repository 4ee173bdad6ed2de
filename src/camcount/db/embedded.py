"""The embedded default: a real PostgreSQL (pgserver, PostgreSQL 16) under ``CAMCOUNT_HOME``.

Used only when no ``CAMCOUNT_DATABASE_URL`` is given, so a new user needs no database server.
The data folder is kept across runs; the server stops when the last process using it exits.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

_servers: dict[Path, Any] = {}


def embedded_owner_url(home: Path) -> str:
    """Start (or join) the embedded server and return a superuser URL for its ``postgres`` database."""
    pgdata = (home / "pgdata").resolve()
    server = _servers.get(pgdata)
    if server is None:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless for a lock file.
            warnings.simplefilter("ignore")
            import pgserver

            server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        _servers[pgdata] = server
    return str(server.get_uri())
