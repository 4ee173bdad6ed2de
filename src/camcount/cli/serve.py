"""``camcount serve``: the HTTP API under uvicorn (uvloop and httptools when installed).

With httptools, the HTTP protocol is :class:`camcount.api.protocol.PenaltyAwareHttpToolsProtocol`:
uvicorn's own, plus the penalty box checked before a request reaches the application, and each
answer written in one piece.
"""

from __future__ import annotations

from typing import Annotated

import typer

from camcount.cli.common import EXIT_UNAVAILABLE, fail, guard, run
from camcount.config import get_settings
from camcount.db.migrations import core_migrations_pending
from camcount.db.pools import Database


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default CAMCOUNT_API_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default CAMCOUNT_API_PORT, 8000).")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="Worker processes (default 1).")] = None,
) -> None:
    """Run the HTTP API. OpenAPI docs at /docs; /healthz and /readyz need no credentials."""
    import uvicorn

    from camcount.app import create_app

    settings = get_settings()
    with guard():
        create_app(settings)  # fails here, with a clear message, when a setting is missing
    # and here when the database is missing, not initialised or not migrated (registered servers
    # are not needed for that; the app loads them itself)
    run(_check_database, load=False)
    uvicorn.run(
        "camcount.app:create_app",
        http=_http_protocol(),
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers or settings.api_workers,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


async def _check_database(db: Database) -> None:
    async with db.owner() as conn:
        pending = await core_migrations_pending(conn)
    if pending:
        fail(
            f"the database's migrations are not current ({len(pending)} pending, first {pending[0]}); "
            "run `camcount migrate` first",
            EXIT_UNAVAILABLE,
        )


def _http_protocol() -> str:
    """The protocol class for uvicorn: ours over httptools when it is installed, else uvicorn's choice."""
    try:
        import camcount.api.protocol  # noqa: F401  (needs httptools)
    except ImportError:
        return "auto"
    return "camcount.api.protocol:PenaltyAwareHttpToolsProtocol"
