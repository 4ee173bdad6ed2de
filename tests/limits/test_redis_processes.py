"""Two real `camcount serve` processes sharing Redis enforce one rate limit between them."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from camcount.accounts.roles import Role
from camcount.accounts.users import UserRequest, create_user
from camcount.db.pools import Database
from camcount.limits.plans import set_tenant_limit
from tests.fixtures.tenants import TenantFactory

CAMCOUNT = str(Path(sys.executable).with_name("camcount"))
REDIS_URL = "redis://127.0.0.1:6379/0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_servers(env_for_cli: dict[str, str]) -> Iterator[list[str]]:
    redis.Redis.from_url(REDIS_URL).ping()  # a real Redis is required, as in production
    env = {**env_for_cli, "CAMCOUNT_REDIS_URL": REDIS_URL}
    ports = [_free_port(), _free_port()]
    processes = [
        subprocess.Popen(
            [CAMCOUNT, "serve", "--port", str(p)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for p in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.stderr.read() if process.stderr else ""
                    assert time.monotonic() < deadline, "camcount serve did not start"
                    time.sleep(0.2)
        yield [f"http://127.0.0.1:{p}" for p in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)


async def test_two_api_processes_share_one_tenant_bucket_through_redis(
    db: Database, make_tenant: TenantFactory, two_servers: list[str]
) -> None:
    tenant = await make_tenant()
    await create_user(db, tenant, UserRequest.parse(username="owner", email="o@example.com", role=Role.OWNER,
                                                    password="a long enough password"), actor="test")  # fmt: skip
    await set_tenant_limit(db, tenant.slug, "requests_per_second", 4, actor="test")
    async with httpx.AsyncClient(timeout=10) as client:
        login = await client.post(f"{two_servers[0]}/t/{tenant.slug}/auth/token",
                                  data={"username": "owner", "password": "a long enough password"})  # fmt: skip
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        # Each process alone would admit 4 per second; together they must admit about 4, not 8.
        answers = await asyncio.gather(
            *(client.get(f"{two_servers[i % 2]}/t/{tenant.slug}/sites", headers=headers) for i in range(12))
        )
    codes = [a.status_code for a in answers]
    accepted = codes.count(200)
    assert set(codes) <= {200, 429}
    assert 4 <= accepted <= 5, codes  # 5: the sliding window may straddle a second boundary
    per_server = {s: [a.status_code for a in answers if str(a.url).startswith(s)] for s in two_servers}
    assert all(429 in c for c in per_server.values()), per_server
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["RateLimit-Limit"] == "4"
    assert "Retry-After" in refused.headers
