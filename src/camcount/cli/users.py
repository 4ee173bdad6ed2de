"""``camcount user create``: a tenant's first owner (or any user), created by the operator."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from camcount.accounts.users import User, UserRequest, create_user
from camcount.cli.common import actor, console, fail, guard, print_json, run
from camcount.db.pools import Database
from camcount.tenancy.lifecycle import require_tenant

app = typer.Typer(help="A tenant's users.", no_args_is_help=True)


@app.command("create")
def create(
    slug: str,
    username: str,
    email: Annotated[str, typer.Option(help="The user's email address.")],
    role: Annotated[str, typer.Option(help="owner, admin, user or viewer.")] = "owner",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a user of a tenant; the password comes from stdin or a prompt, never an argument."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if not password:
        fail("password: must not be empty")
    with guard():
        request = UserRequest.parse(username=username, email=email, role=role, password=password)

    async def action(db: Database) -> User:
        async with db.owner() as conn:
            tenant = await require_tenant(conn, slug)
        return await create_user(db, tenant, request, actor=actor())

    user = run(action)
    if as_json:
        print_json({"id": user.id, "username": user.username, "email": user.email, "role": str(user.role)})
    else:
        console.print(f"user [bold]{user.username}[/bold] ({user.role}) created in {slug}", highlight=False)
