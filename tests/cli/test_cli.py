"""The ``camcount`` command as an operator types it: output, JSON, exit codes, no stack traces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from camcount.cli.main import app
from camcount.db.pools import Database
from tests.fixtures.tenants import unique_slug

CAMCOUNT = str(Path(sys.executable).with_name("camcount"))


def camcount(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CAMCOUNT, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def cli_env(db: Database, env_for_cli: dict[str, str]) -> dict[str, str]:
    return env_for_cli  # `db` first, so the database is initialised


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for command in (
        [], ["init"], ["migrate"], ["demo"], ["tenant"], ["tenant", "create"], ["tenant", "list"], ["tenant", "show"],
        ["tenant", "suspend"], ["tenant", "activate"], ["tenant", "delete"], ["tenant", "config"],
        ["tenant", "config", "set"], ["tenant", "config", "get"], ["tenant", "config", "list"],
        ["tenant", "config", "unset"], ["server", "add"], ["server", "list"], ["secrets", "rotate"],
    ):  # fmt: skip
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output


def test_an_operator_manages_a_tenant_from_the_command_line(cli_env: dict[str, str]) -> None:
    slug = unique_slug("cli")
    created = camcount(cli_env, "tenant", "create", slug, "--name", "CLI Co", "--plan", "basic",
                       "--placement", "schema", "--timezone", "Europe/Paris", "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["created"] is True
    again = camcount(cli_env, "tenant", "create", slug, "--name", "CLI Co", "--plan", "basic",
                     "--placement", "schema", "--timezone", "Europe/Paris", "--json")  # fmt: skip
    assert json.loads(again.stdout)["created"] is False

    shown = json.loads(camcount(cli_env, "tenant", "show", slug, "--json").stdout)
    assert (shown["plan"], shown["placement"], shown["schema"]) == ("basic", "schema", f"t_{shown['id']}")
    assert camcount(cli_env, "tenant", "suspend", slug).returncode == 0
    listed = json.loads(camcount(cli_env, "tenant", "list", "--status", "suspended", "--json").stdout)
    assert slug in [t["slug"] for t in listed]

    assert (
        camcount(cli_env, "tenant", "config", "set", slug, "webhook.secret", "p4ss", "--secret").returncode
        == 0
    )
    masked = camcount(cli_env, "tenant", "config", "get", slug, "webhook.secret")
    assert "p4ss" not in masked.stdout and "****" in masked.stdout
    revealed = camcount(cli_env, "tenant", "config", "get", slug, "webhook.secret", "--reveal")
    assert revealed.stdout.strip() == "p4ss"
    listing = camcount(cli_env, "tenant", "config", "list", slug, "--json")
    assert "p4ss" not in listing.stdout

    refused = camcount(cli_env, "tenant", "delete", slug)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert camcount(cli_env, "tenant", "delete", slug, "--yes").returncode == 0
    gone = camcount(cli_env, "tenant", "show", slug)
    assert gone.returncode == 3 and "no tenant" in gone.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tenant", "create", "Bad;Slug", "--name", "x"], "slug"),
        (["tenant", "create", "x" * 10_000, "--name", "x"], "slug"),
        (["tenant", "create", "good-slug", "--name", "x", "--placement", "cloud"], "placement"),
        (["tenant", "create", "good-slug", "--name", "x", "--timezone", "Mars/Base"], "timezone"),
        (["tenant", "create", "good-slug", "--name", "x", "--domain", "evil.com'; --"], "domain"),
        (["tenant", "create", "good-slug", "--name", "x", "--plan", "gold"], "plan"),
        (["tenant", "config", "set", "no-such-tenant", "key", "v"], "no tenant"),
        (["tenant", "config", "set", "no-such-tenant", "Bad Key", "v"], "key"),
        (["tenant", "list", "--status", "happy"], "status"),
    ],
)
def test_bad_input_gets_one_clear_line_and_no_traceback(
    cli_env: dict[str, str], args: list[str], message: str
) -> None:
    result = camcount(cli_env, *args)
    assert result.returncode in (2, 3)
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr) < 2_000


def test_migrate_status_reports_everything_current(cli_env: dict[str, str]) -> None:
    result = camcount(cli_env, "migrate", "--status")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    assert camcount(cli_env, "migrate").returncode == 0


def test_an_unreachable_database_is_a_clear_error(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "CAMCOUNT_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}
    result = camcount(env, "tenant", "list")
    assert result.returncode == 5
    assert "cannot reach PostgreSQL" in result.stderr and "Traceback" not in result.stderr


def test_a_change_is_kept_when_redis_cannot_be_told(cli_env: dict[str, str]) -> None:
    """The change commits first; an unreachable Redis only costs the early notice to API processes."""
    slug = unique_slug("cli")
    assert camcount(cli_env, "tenant", "create", slug, "--name", "Quiet Co").returncode == 0
    env = {**cli_env, "CAMCOUNT_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = camcount(env, "tenant", "suspend", slug)
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and "Traceback" not in result.stderr
    shown = json.loads(camcount(cli_env, "tenant", "show", slug, "--json").stdout)
    assert shown["status"] == "suspended"


def test_writing_a_secret_without_a_key_is_a_clear_error(cli_env: dict[str, str]) -> None:
    slug = unique_slug("cli")
    assert camcount(cli_env, "tenant", "create", slug, "--name", "Keyless").returncode == 0
    env = {k: v for k, v in cli_env.items() if k != "CAMCOUNT_SECRET_KEY"}
    result = camcount(env, "tenant", "config", "set", slug, "api.token", "t0ken", "--secret")
    assert result.returncode == 2
    assert "CAMCOUNT_SECRET_KEY is not set" in result.stderr
    plain = camcount(env, "tenant", "config", "set", slug, "greeting", "hello")
    assert plain.returncode == 0  # plain values need no key
