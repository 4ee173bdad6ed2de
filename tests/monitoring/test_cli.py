"""The operations commands, run as the operator runs them."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from camcount.db.pools import Database
from camcount.tenancy.models import Tenant
from tests.fixtures.tenants import TenantFactory
from tests.jobs.helpers import add_camera

CAMCOUNT = str(Path(sys.executable).parent / "camcount")


async def camcount(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        CAMCOUNT, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_jobs_run_records_a_manual_run_that_jobs_list_shows(
    db: Database, env_for_cli: dict[str, str]
) -> None:
    code, out, err = await camcount(env_for_cli, "jobs", "run", "health", "--json")
    assert code == 0, err
    run: dict[str, Any] = json.loads(out)
    assert (run["job"], run["trigger"], run["status"]) == ("health", "manual", "succeeded")
    assert run["duration_seconds"] >= 0
    code, out, err = await camcount(env_for_cli, "jobs", "list", "--job", "health", "--json")
    assert code == 0, err
    assert run["id"] in [r["id"] for r in json.loads(out)]


async def test_unknown_jobs_and_statuses_are_clear_errors(env_for_cli: dict[str, str]) -> None:
    code, _, err = await camcount(env_for_cli, "jobs", "run", "drop-everything'; --")
    assert code == 3
    assert "no job" in err
    code, _, err = await camcount(env_for_cli, "health", "--status", "BROKEN")
    assert code == 2
    assert "HEALTHY, WARNING, CRITICAL" in err


async def test_health_and_tenant_metrics_commands_report_one_tenant(
    db: Database, make_tenant: TenantFactory, env_for_cli: dict[str, str]
) -> None:
    tenant: Tenant = await make_tenant("schema")
    await add_camera(db, tenant)
    await add_camera(db, tenant)
    code, out, err = await camcount(env_for_cli, "health", "--tenant", tenant.slug, "--json")
    assert code == 0, err
    [health] = json.loads(out)
    assert health["tenant"] == tenant.slug
    assert health["status"] in ("HEALTHY", "WARNING", "CRITICAL")
    code, out, err = await camcount(env_for_cli, "tenant", "metrics", tenant.slug, "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert (metrics["tenant"], metrics["cameras"], metrics["sites"]) == (tenant.slug, 2, 2)
    assert metrics["storage_method"] == "exact"
    code, _, err = await camcount(env_for_cli, "tenant", "metrics", "no-such-tenant")
    assert code == 3
