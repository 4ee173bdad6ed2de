"""``camcount tenant ...``: provisioning, lifecycle and configuration of tenants."""

from __future__ import annotations

from typing import Annotated

import typer

from camcount.cli.common import actor, console, fail, guard, print_json, print_table, run, run_tenant_change
from camcount.config import get_settings
from camcount.db.pools import Database
from camcount.runtime import optional_secret_box
from camcount.secretbox import secret_box
from camcount.tenancy import configs
from camcount.tenancy.lifecycle import delete_tenant, list_tenants, parse_status, require_tenant, set_status
from camcount.tenancy.models import Status, Tenant
from camcount.tenancy.provisioning import TenantRequest, create_tenant

app = typer.Typer(help="Create, inspect, suspend, delete and configure tenants.", no_args_is_help=True)
config_app = typer.Typer(help="A tenant's typed configuration; secret values are encrypted at rest.",
                         no_args_is_help=True)  # fmt: skip
app.add_typer(config_app, name="config")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TENANT_COLUMNS = ("slug", "name", "status", "plan", "placement", "server", "timezone", "domain", "subdomain")


def _print_tenants(tenants: list[Tenant], as_json: bool, title: str | None = None) -> None:
    if as_json:
        print_json([t.public_dict() for t in tenants])
        return
    rows = ([t.public_dict()[c] for c in TENANT_COLUMNS] for t in tenants)
    print_table(title, TENANT_COLUMNS, rows)


@app.command("create")
def create(
    slug: Annotated[
        str, typer.Argument(help="3-50 lowercase letters, digits and hyphens; the tenant's handle.")
    ],
    name: Annotated[str, typer.Option(help="Display name.")],
    plan: Annotated[
        str, typer.Option(help="basic, standard, premium, enterprise or an operator-defined plan.")
    ] = ("standard"),
    placement: Annotated[
        str, typer.Option(help="pooled (shared tables, RLS), schema or database.")
    ] = "pooled",
    server: Annotated[str | None, typer.Option(help="Registered server for the database placement.")] = None,
    domain: Annotated[str | None, typer.Option(help="The tenant's own host name.")] = None,
    subdomain: Annotated[str | None, typer.Option(help="Subdomain under CAMCOUNT_BASE_DOMAIN.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Paris.")] = "UTC",
    as_json: JsonOption = False,
) -> None:
    """Provision a tenant: all or nothing; the same command again reports the existing tenant."""
    with guard():
        request = TenantRequest.parse(
            slug, name=name, plan=plan, placement=placement, server=server, domain=domain, subdomain=subdomain,
            timezone=timezone,
        )  # fmt: skip
    result = run(lambda db: create_tenant(db, request, actor=actor()))
    if as_json:
        print_json({**result.tenant.public_dict(), "created": result.created})
    else:
        verb = "created" if result.created else "already exists, unchanged"
        console.print(
            f"tenant [bold]{result.tenant.slug}[/bold] {verb} ({result.tenant.placement})", highlight=False
        )


@app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="Only tenants with this status.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List tenants."""

    async def action(db: Database) -> list[Tenant]:
        async with db.owner() as conn:
            return await list_tenants(conn, status=status)

    _print_tenants(run(action), as_json)


@app.command("show")
def show(slug: str, as_json: JsonOption = False) -> None:
    """Show one tenant."""

    async def action(db: Database) -> Tenant:
        async with db.owner() as conn:
            return await require_tenant(conn, slug)

    tenant = run(action)
    if as_json:
        print_json(tenant.public_dict())
    else:
        print_table(None, ("field", "value"), tenant.public_dict().items())


def _change_status(slug: str, status: Status) -> None:
    tenant = run_tenant_change(lambda db: set_status(db, slug, status, actor=actor()), lambda t: t.id)
    console.print(f"tenant [bold]{tenant.slug}[/bold] is {tenant.status}", highlight=False)


@app.command("suspend")
def suspend(slug: str) -> None:
    """Suspend a tenant: its requests are refused until it is activated again."""
    _change_status(slug, Status.SUSPENDED)


@app.command("activate")
def activate(slug: str) -> None:
    """Activate a suspended or inactive tenant."""
    _change_status(slug, Status.ACTIVE)


@app.command("deactivate")
def deactivate(slug: str) -> None:
    """Mark a tenant inactive (kept, but treated as gone)."""
    _change_status(slug, parse_status("inactive"))


@app.command("delete")
def delete(
    slug: str,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the tenant's data is removed for good.")
    ] = False,
) -> None:
    """Delete a tenant and all its data (its audit record is kept)."""
    if not yes:
        fail("deleting a tenant removes all its data; add --yes to confirm")
    tenant = run_tenant_change(lambda db: delete_tenant(db, slug, actor=actor()), lambda t: t.id)
    console.print(f"tenant [bold]{tenant.slug}[/bold] deleted", highlight=False)


@config_app.command("set")
def config_set(
    slug: str,
    key: str,
    value: str,
    value_type: Annotated[str, typer.Option("--type", help="string, integer, boolean or json.")] = "string",
    secret: Annotated[bool, typer.Option("--secret", help="Encrypt at rest and mask when shown.")] = False,
) -> None:
    """Set a configuration value, checked against its type."""
    with guard():
        box = secret_box(get_settings()) if secret else None
    entry = run_tenant_change(lambda db: configs.set_config(db, slug, key, value, value_type=value_type, secret=secret,
                                                            box=box, actor=actor()), slug)  # fmt: skip
    console.print(f"{slug}: {entry.key} = {entry.value!r} ({entry.value_type})", highlight=False)


@config_app.command("get")
def config_get(
    slug: str,
    key: str,
    reveal: Annotated[bool, typer.Option("--reveal", help="Decrypt and print a secret value.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Print one configuration value (secrets masked unless --reveal)."""
    box = optional_secret_box(get_settings())
    entry = run(lambda db: configs.get_config(db, slug, key, reveal=reveal, box=box))
    if as_json:
        print_json(entry.as_dict())
    else:
        console.print(entry.value if isinstance(entry.value, str) else repr(entry.value), highlight=False,
                      markup=False)  # fmt: skip


@config_app.command("list")
def config_list(
    slug: str,
    reveal: Annotated[bool, typer.Option("--reveal", help="Decrypt and print secret values.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List a tenant's configuration."""
    box = optional_secret_box(get_settings())
    entries = run(lambda db: configs.list_configs(db, slug, reveal=reveal, box=box))
    if as_json:
        print_json([e.as_dict() for e in entries])
    else:
        print_table(f"configuration of {slug}", ("key", "type", "secret", "value"),
                    ((e.key, e.value_type, "yes" if e.is_secret else "", e.value) for e in entries))  # fmt: skip


@config_app.command("unset")
def config_unset(slug: str, key: str) -> None:
    """Remove a configuration key."""
    run_tenant_change(lambda db: configs.unset_config(db, slug, key, actor=actor()), slug)
    console.print(f"{slug}: {key} removed", highlight=False)
