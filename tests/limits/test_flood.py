"""A real `camcount serve` under a flood: the flooder is served at its rate, its neighbour at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from camcount.accounts.roles import Role
from camcount.accounts.users import UserRequest, create_user
from camcount.db.pools import Database
from camcount.limits.plans import set_tenant_limit
from camcount.tenancy.models import Tenant
from tests.fixtures.serve import camcount_servers
from tests.fixtures.tenants import TenantFactory

PASSWORD = "a long enough password"
RATE = 10
SECONDS = 2.0


@pytest.fixture
def server(env_for_cli: dict[str, str]) -> Iterator[str]:
    with camcount_servers(env_for_cli) as bases:
        yield bases[0]


async def _headers(client: httpx.AsyncClient, base: str, db: Database, tenant: Tenant) -> dict[str, str]:
    request = UserRequest.parse(username="owner", email="o@example.com", role=Role.OWNER, password=PASSWORD)
    await create_user(db, tenant, request, actor="test")
    login = await client.post(
        f"{base}/t/{tenant.slug}/auth/token", data={"username": "owner", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_a_flooding_tenant_gets_its_rate_and_its_neighbour_is_served(
    db: Database, make_tenant: TenantFactory, server: str
) -> None:
    flooder, neighbour = await make_tenant(), await make_tenant()
    await set_tenant_limit(db, flooder.slug, "requests_per_second", RATE, actor="test")
    codes: list[int] = []
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=20)) as client:
        flood_headers = await _headers(client, server, db, flooder)
        calm_headers = await _headers(client, server, db, neighbour)
        deadline = time.monotonic() + SECONDS

        async def flood() -> None:  # one connection's worth: back to back, no pause
            while time.monotonic() < deadline:
                answer = await client.get(f"{server}/t/{flooder.slug}/sites", headers=flood_headers)
                codes.append(answer.status_code)

        async def calm() -> list[int]:
            answers = []
            while time.monotonic() < deadline:
                answers.append(
                    (await client.get(f"{server}/t/{neighbour.slug}/sites", headers=calm_headers)).status_code
                )
                await asyncio.sleep(0.05)
            return answers

        *_, neighbour_codes = await asyncio.gather(*(flood() for _ in range(8)), calm())

    assert set(codes) <= {200, 429}
    admitted = codes.count(200)
    # Served at its rate over the flood: the penalty box lets one request per 1/RATE s through to the
    # rate limiter (a box that refused them all would leave about 1 per 100 ms penalty, or less).
    assert RATE * SECONDS * 0.6 <= admitted <= RATE * (SECONDS + 1), codes
    assert codes.count(429) > admitted  # the flood itself was refused
    assert neighbour_codes and set(neighbour_codes) == {200}
