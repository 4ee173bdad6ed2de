"""``camcount``: the operator's command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from camcount.cli import billing, ops, plans, tenants, usage
from camcount.cli import operators as operator_cli
from camcount.cli import users as user_cli
from camcount.cli.common import (
    EXIT_CONFLICT,
    actor,
    console,
    err_console,
    guard,
    print_json,
    print_table,
    run,
)
from camcount.cli.serve import serve
from camcount.config import get_settings
from camcount.counting.demo import (
    DEMO_CREDENTIALS_FILE,
    DEMO_USERNAME,
    DemoSummary,
    demo_password,
    provision_demo,
)
from camcount.db.pools import Database
from camcount.secretbox import generate_key, secret_box
from camcount.tenancy import configs
from camcount.tenancy.bootstrap import MigrationPlan, TargetResult, initialize, migrate_all, plan_migrations
from camcount.tenancy.servers import ServerInfo, add_server, list_servers

app = typer.Typer(
    help="camcount: multi-tenant AI camera counting. Operator commands for tenants, servers and migrations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server_app = typer.Typer(help="PostgreSQL servers for database-placement tenants.", no_args_is_help=True)
secrets_app = typer.Typer(help="Keys for secret configuration at rest.", no_args_is_help=True)
app.add_typer(tenants.app, name="tenant")
app.add_typer(server_app, name="server")
app.add_typer(secrets_app, name="secrets")
app.add_typer(plans.app, name="plan")
app.add_typer(billing.app, name="billing")
app.add_typer(user_cli.app, name="user")
app.add_typer(operator_cli.app, name="operator")
app.command("serve")(serve)
app.command("usage")(usage.usage)
tenants.app.add_typer(plans.limit_app, name="limit")
tenants.app.command("plan")(plans.tenant_plan)
app.command("worker")(ops.worker)
app.add_typer(ops.jobs_app, name="jobs")
app.command("health")(ops.health)
tenants.app.command("metrics")(ops.metrics_command)

# Show a progress bar only when there is enough to wait for.
PROGRESS_THRESHOLD = 20


def _report_migrations(results: list[TargetResult]) -> None:
    failed = [r for r in results if r.error]
    applied = [r for r in results if r.applied and not r.error]
    for result in applied:
        console.print(f"migrated {result.target.label}: {', '.join(result.applied)}", highlight=False)
    for result in failed:
        err_console.print(f"[red]failed[/red] {result.target.label}: {result.error}", highlight=False)
    if not results:
        console.print("everything is up to date")
    if failed:
        err_console.print(f"{len(failed)} target(s) failed and were left at their previous versions; "
                          "fix the cause and run `camcount migrate` again")  # fmt: skip
        raise typer.Exit(EXIT_CONFLICT)


@app.command("init")
def init() -> None:
    """Create or upgrade everything: roles, databases, control plane and every tenant target."""
    results = run(initialize, load=False)
    _report_migrations(results)
    console.print("camcount is initialised")


@app.command("migrate")
def migrate(
    status: Annotated[bool, typer.Option("--status", help="Only list the targets that are behind.")] = False,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="Parallel workers (default 4).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with --status).")] = False,
) -> None:
    """Apply pending migrations to the control plane and then to all tenant targets."""
    if status:
        plan: MigrationPlan = run(plan_migrations)
        rows = [(t.label, t.server, t.dbname, t.schema, ", ".join(missing)) for t, missing in plan.behind]
        if as_json:
            print_json([dict(zip(("target", "server", "database", "schema", "pending"), r, strict=True))
                        for r in rows])  # fmt: skip
        elif rows:
            print_table(f"{len(rows)} of {plan.total_targets} targets behind",
                        ("target", "server", "database", "schema", "pending"), rows)  # fmt: skip
        else:
            console.print(f"all {plan.total_targets} targets are up to date")
        return

    with Progress(
        TextColumn("migrating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("targets", total=None, visible=False)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, visible=total >= PROGRESS_THRESHOLD)

        results = run(lambda db: migrate_all(db, workers=workers, progress=advance))
    _report_migrations(results)


@app.command("demo")
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Initialise, then provision three demo tenants (one per placement) with sample counts and list them."""

    async def action(db: Database) -> list[DemoSummary]:
        await initialize(db)
        return await provision_demo(db, actor=actor())

    summaries = run(action, load=False)
    password = demo_password(get_settings().home)
    if as_json:
        print_json([{**s.tenant.public_dict(), "cameras": s.cameras, "events": s.events, "username": s.username}
                    for s in summaries])  # fmt: skip
        return
    print_table(
        "camcount demo tenants",
        ("slug", "name", "placement", "plan", "time zone", "cameras", "events", "login"),
        ((s.tenant.slug, s.tenant.name, s.tenant.placement, s.tenant.plan, s.tenant.timezone, s.cameras, s.events,
          f"{s.username} / see below") for s in summaries),
    )  # fmt: skip
    console.print(
        f"Each demo tenant has an owner [bold]{DEMO_USERNAME}[/bold]; the password is in "
        f"{get_settings().home / DEMO_CREDENTIALS_FILE} (kept private, 0600): [bold]{password}[/bold]",
        highlight=False,
    )


@server_app.command("add")
def server_add(
    name: str,
    url: Annotated[str, typer.Option(help="Owner connection URL of the server (stored encrypted).")],
) -> None:
    """Register a PostgreSQL server for database-placement tenants and prepare it."""
    with guard():
        box = secret_box(get_settings())
    info = run(lambda db: add_server(db, name, url, box=box, actor=actor()))
    console.print(f"server [bold]{info.name}[/bold] added ({info.host})", highlight=False)


@server_app.command("list")
def server_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List registered servers (host and port only; never credentials)."""

    async def action(db: Database) -> list[ServerInfo]:
        async with db.owner() as conn:
            return await list_servers(conn, db)

    servers = run(action)
    if as_json:
        print_json([s.as_dict() for s in servers])
    else:
        print_table("database servers", ("name", "default", "host", "tenants"),
                    ((s.name, "yes" if s.is_default else "", s.host, s.tenants) for s in servers))  # fmt: skip


@secrets_app.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new key for CAMCOUNT_SECRET_KEY."""
    print(generate_key())


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret under the current key (old keys in CAMCOUNT_OLD_SECRET_KEYS)."""
    with guard():
        box = secret_box(get_settings())
    count = run(lambda db: configs.rotate_secrets(db, box))
    console.print(f"re-encrypted {count} secret value(s) under the current key")


def _mount_edge() -> None:
    """The edge worker's commands, when its module is present (it imports OpenCV only when run)."""
    try:
        from camcount.cli import edge
    except ImportError:
        return
    app.add_typer(edge.app, name="edge")


_mount_edge()
