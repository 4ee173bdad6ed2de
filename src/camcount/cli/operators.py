"""``camcount operator token create|list|revoke``: tokens for the /admin API."""

from __future__ import annotations

from typing import Annotated

import typer

from camcount.accounts import operators
from camcount.cli.common import actor, console, err_console, print_json, print_table, run

app = typer.Typer(help="Operator access to the /admin API.", no_args_is_help=True)
token_app = typer.Typer(help="Operator tokens (stored hashed; shown once).", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def create(name: str) -> None:
    """Create a token and print it once: store it now, it cannot be shown again."""
    _, token = run(lambda db: operators.create_token(db, name, actor=actor()))
    err_console.print(
        f"operator token [bold]{name}[/bold] created; it is shown only this once:", highlight=False
    )
    print(token)


@token_app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List operator tokens (names and prefixes only) and when each was last used."""
    tokens = run(operators.list_tokens)
    if as_json:
        print_json([t.as_dict() for t in tokens])
    else:
        print_table("operator tokens", ("name", "prefix", "created by", "created at", "last used"),
                    ((t.name, t.prefix, t.created_by, t.created_at, t.last_used_at or "never")
                     for t in tokens))  # fmt: skip


@token_app.command("revoke")
def revoke(name: str) -> None:
    """Revoke a token; API processes stop accepting it within seconds."""
    run(lambda db: operators.revoke_token(db, name, actor=actor()))
    console.print(f"operator token [bold]{name}[/bold] revoked", highlight=False)
