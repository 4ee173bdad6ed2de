"""Two real `camcount serve` processes sharing Redis enforce one rate limit between them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import redis

from camcount.accounts.roles import Role
from camcount.accounts.users import UserRequest, create_user
from camcount.db.pools import Database
from camcount.limits.plans import set_tenant_limit
from tests.fixtures.serve import camcount_servers
from tests.fixtures.tenants import TenantFactory

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def two_servers(env_for_cli: dict[str, str]) -> Iterator[list[str]]:
    redis.Redis.from_url(REDIS_URL).ping()  # a real Redis is required, as in production
    with camcount_servers({**env_for_cli, "CAMCOUNT_REDIS_URL": REDIS_URL}, count=2) as bases:
        yield bases


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
