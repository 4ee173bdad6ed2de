"""What every command shares: running an action, showing errors, printing tables or JSON."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import typer
from psycopg import errors as pg_errors
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from camcount.cache import make_cache
from camcount.config import get_settings
from camcount.db.pools import Database
from camcount.errors import CamcountError, ConfigurationError, Conflict, InvalidInput, NotFound
from camcount.runtime import open_database
from camcount.tenancy.lifecycle import require_tenant

T = TypeVar("T")

# Piped output keeps whole table cells rather than wrapping at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

EXIT_INVALID = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5


def actor() -> str:
    """Who the audit log names for a command run from this shell."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(action: Callable[[Database], Awaitable[T]], *, load: bool = True) -> T:
    """Open the database, run ``action``, and turn known failures into clear messages and exit codes."""

    async def main() -> T:
        async with open_database(get_settings(), load=load) as db:
            return await action(db)

    with guard():
        return asyncio.run(main())
    raise AssertionError("unreachable")  # guard() exits on every error it catches


def run_tenant_change(
    action: Callable[[Database], Awaitable[T]], tenant: str | Callable[[T], int] | None
) -> T:
    """:func:`run` for a command that changes what API processes cache about a tenant.

    ``tenant``: its slug, a function of the action's result giving its id, or None for every
    tenant (a plan's change concerns every tenant on it). After the change has committed, running API processes are told
    to drop what they hold about it, as the ``/admin`` routes do: through Redis when
    ``CAMCOUNT_REDIS_URL`` is set; without it they cannot be reached and see the change when their
    short cache lifetimes run out.
    """

    async def change_and_announce(db: Database) -> T:
        result = await action(db)
        changed: int | None = None
        if isinstance(tenant, str):
            async with db.owner() as conn:
                changed = (await require_tenant(conn, tenant)).id
        elif tenant is not None:
            changed = tenant(result)
        await _announce(db, changed)
        return result

    return run(change_and_announce)


async def _announce(db: Database, tenant_id: int | None) -> None:
    settings = get_settings()
    if settings.redis_url is None:
        return
    cache = make_cache(settings, namespace=db.main_dbname)  # the namespace the API processes use
    try:
        await cache.ping()  # invalidate_tenant only logs a failure; a command should say it
        await cache.invalidate_tenant(tenant_id)
    except (OSError, RedisError) as exc:
        # The change is committed; only the early notice failed.
        err_console.print(
            f"[yellow]warning:[/yellow] done, but running API processes could not be told at once "
            f"(Redis: {exc}); they see the change within their cache lifetimes",
            markup=True, highlight=False, soft_wrap=True,
        )  # fmt: skip
    finally:
        await cache.close()


@contextmanager
def guard() -> Iterator[None]:
    """Show camcount's errors as one clear line with an exit code, never a stack trace."""
    try:
        yield
    except InvalidInput as exc:
        fail(str(exc), EXIT_INVALID)
    except NotFound as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except Conflict as exc:
        fail(str(exc), EXIT_CONFLICT)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_INVALID)
    except CamcountError as exc:
        fail(str(exc), EXIT_INVALID)
    except pg_errors.UndefinedTable:
        fail("camcount is not initialised here; run `camcount init` first", EXIT_UNAVAILABLE)
    except pg_errors.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0]
        # A connection refused for a missing database carries no SQLSTATE; its text is all there is.
        hint = "; run `camcount init` first" if "does not exist" in first_line else ""
        fail(f"cannot reach PostgreSQL: {first_line}{hint}", EXIT_UNAVAILABLE)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console.print(table)
