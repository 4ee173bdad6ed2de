"""The operator's commands for plans, overrides, usage and billing, run as the real `camcount` program."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from pydantic import SecretStr

from camcount.app import create_app
from camcount.config import Settings
from camcount.db.pools import Database
from tests.fixtures.api import ApiTenantFactory
from tests.fixtures.tenants import TenantFactory

CAMCOUNT = str(Path(sys.executable).with_name("camcount"))
REDIS_URL = os.environ.get("CAMCOUNT_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CAMCOUNT, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


async def test_plans_overrides_and_plan_changes_from_the_command_line_are_audited(
    db: Database, make_tenant: TenantFactory, env_for_cli: dict[str, str]
) -> None:
    code = f"cli-{uuid.uuid4().hex[:8]}"
    created = cli(env_for_cli, "plan", "create", code, "--name", "CLI plan", "--base-price", "49.50", "--rate", "20",
                  "--copy-from", "standard", "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["limits"]["cameras"]["limit"] == 10
    bad = cli(
        env_for_cli, "plan", "create", f"x{code}", "--name", "x", "--base-price", "1.005", "--rate", "1"
    )
    assert bad.returncode == 2
    assert "at most 2 decimal places" in bad.stderr
    assert cli(env_for_cli, "plan", "set-limit", code, "cameras", "12").returncode == 0
    assert cli(env_for_cli, "plan", "set-price", code, "events", "0.0001").returncode == 0

    tenant = await make_tenant()
    moved = cli(env_for_cli, "tenant", "plan", tenant.slug, code, "--json")
    assert moved.returncode == 0, moved.stderr
    assert {x["resource"]: x["limit"] for x in json.loads(moved.stdout)}["cameras"] == 12
    assert cli(env_for_cli, "tenant", "limit", "set", tenant.slug, "cameras", "3").returncode == 0
    assert cli(env_for_cli, "plan", "set-limit", code, "cameras", "14").returncode == 0  # override wins
    shown = json.loads(cli(env_for_cli, "tenant", "limit", "list", tenant.slug, "--json").stdout)
    assert {x["resource"]: (x["limit"], x["is_override"]) for x in shown}["cameras"] == (3, True)
    unset = json.loads(cli(env_for_cli, "tenant", "limit", "unset", tenant.slug, "cameras", "--json").stdout)
    assert {x["resource"]: x["limit"] for x in unset}["cameras"] == 14
    missing = cli(env_for_cli, "tenant", "limit", "unset", tenant.slug, "cameras")
    assert missing.returncode == 3

    report = json.loads(cli(env_for_cli, "usage", "--tenant", tenant.slug, "--json").stdout)
    assert {r["resource"] for r in report} >= {"cameras", "api_calls_per_day", "storage_gb"}
    assert all(r["status"] == "LOW" for r in report)
    assert cli(env_for_cli, "usage", "--status", "bogus").returncode == 2

    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT action FROM control.audit_log WHERE tenant_slug = %s OR after->>'plan' = %s OR after->>'code' = %s",
            (tenant.slug, code, code),
        )
        actions = {row[0] for row in await cur.fetchall()}
    assert actions >= {"plan.create", "plan.set_limit", "plan.set_price", "tenant.plan_change",
                       "tenant.limit_set", "tenant.limit_unset"}  # fmt: skip


async def test_billing_from_the_command_line_runs_once_and_exports_csv(
    db: Database, make_tenant: TenantFactory, env_for_cli: dict[str, str]
) -> None:
    tenant = await make_tenant(plan="basic")
    async with db.owner() as conn, conn.transaction():
        await conn.execute("UPDATE control.tenants SET created_at = '2026-05-01' WHERE id = %s", (tenant.id,))
    first = cli(env_for_cli, "billing", "run", "--period", "2026-06", "--tenant", tenant.slug, "--json")
    assert first.returncode == 0, first.stderr
    (invoice,) = json.loads(first.stdout)["created"]
    assert invoice["total_amount"] == "29.99"
    again = json.loads(
        cli(env_for_cli, "billing", "run", "--period", "2026-06", "--tenant", tenant.slug, "--json").stdout
    )
    assert again["created"] == []
    assert again["already_invoiced"] == 1
    csv_out = cli(env_for_cli, "billing", "invoices", "--tenant", tenant.slug, "--csv").stdout.splitlines()
    assert len(csv_out) == 2
    assert csv_out[1].split(",")[1:9] == [
        tenant.slug,
        "monthly",
        "2026-06-01",
        "2026-07-01",
        "USD",
        "29.99",
        "0.00",
        "29.99",
    ]
    paid = cli(env_for_cli, "billing", "mark", tenant.slug, str(invoice["id"]), "paid")
    assert paid.returncode == 0, paid.stderr
    again_paid = cli(env_for_cli, "billing", "mark", tenant.slug, str(invoice["id"]), "cancelled")
    assert again_paid.returncode == 4
    assert "is paid; it cannot become cancelled" in again_paid.stderr
    other = await make_tenant()
    assert cli(env_for_cli, "billing", "mark", other.slug, str(invoice["id"]), "paid").returncode == 3
    assert cli(env_for_cli, "billing", "run", "--period", "2026-6").returncode == 2


async def test_with_redis_a_plan_rate_changed_from_the_command_line_applies_in_a_running_api(
    api_settings: Settings, make_api_tenant: ApiTenantFactory, env_for_cli: dict[str, str]
) -> None:
    """`plan update` announces the change to every tenant (through Redis) as the /admin routes do;
    without it a running API would keep the plan's old rate for its cache lifetime (10 s)."""
    code = f"cli-{uuid.uuid4().hex[:8]}"
    created = cli(env_for_cli, "plan", "create", code, "--name", code, "--base-price", "0", "--rate", "30",
                  "--copy-from", "standard")  # fmt: skip
    assert created.returncode == 0, created.stderr
    tenant = await make_api_tenant()
    assert cli(env_for_cli, "tenant", "plan", tenant.slug, code).returncode == 0
    settings = api_settings.model_copy(update={"redis_url": SecretStr(REDIS_URL), "limits_enforced": True})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

            async def rate() -> str:
                answer = await client.get(tenant.url("/sites"), headers=tenant.headers)
                assert answer.status_code == 200, answer.text
                return answer.headers["RateLimit-Limit"]

            assert await rate() == "30"  # cached now
            done = await asyncio.to_thread(
                cli, {**env_for_cli, "CAMCOUNT_REDIS_URL": REDIS_URL}, "plan", "update", code, "--rate", "17"
            )
            assert done.returncode == 0, done.stderr
            started = time.monotonic()
            while await rate() != "17":
                assert time.monotonic() - started < 3.0, "the running API kept the plan's old rate"
                await asyncio.sleep(0.05)
