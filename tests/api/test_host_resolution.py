"""Finding the tenant by host name: ``{subdomain}.{base_domain}`` and a tenant's own domain.

Host names are one of the naming sources: they must agree with the path and ``X-Tenant`` (else 400,
without naming the other tenant) and with the credential (else the missing tenant's 404); a host of
the base domain that is no tenant's is the missing tenant's 404 as well.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from camcount.config import Settings
from camcount.db.pools import Database
from camcount.tenancy.models import Tenant
from tests.fixtures.api import ApiTenant, ApiTenantFactory

BASE = "counts.camcount.test"


@pytest.fixture(scope="module")
async def host_app(api_settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    from camcount.app import create_app

    app = create_app(api_settings.model_copy(update={"base_domain": BASE, "pool_max_size": 3}))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def host_api(host_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=host_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _tenant(make_api_tenant: ApiTenantFactory, placement: str = "pooled") -> tuple[ApiTenant, str, str]:
    label = f"h{uuid.uuid4().hex[:10]}"
    t = await make_api_tenant(placement, subdomain=label, domain=f"people.{label}.example")
    return t, f"{label}.{BASE}", f"people.{label}.example"


def _body(response: httpx.Response) -> dict[str, Any]:
    body = dict(response.json())
    assert body.pop("request_id")
    return body


def _names(tenant: Tenant) -> tuple[str, ...]:
    return (tenant.slug, tenant.name)  # ids are small numbers, found in any request id


async def test_the_subdomain_and_the_own_domain_name_the_tenant_without_a_path(
    host_api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    a, sub_host, own_host = await _tenant(make_api_tenant, placement)
    created = await host_api.post(
        a.url("/sites"), json={"name": "HQ"}, headers={"Host": sub_host, **a.headers}
    )
    assert created.status_code == 201, created.text
    for host in (sub_host, own_host, f"{sub_host}:8443", sub_host.upper(), f"{own_host}."):
        listed = await host_api.get("/sites", headers={"Host": host, **a.headers})
        assert listed.status_code == 200, (host, listed.text)
        assert [s["name"] for s in listed.json()["items"]] == ["HQ"]
        # The host agreeing with the path and the header is fine too.
        agreed = await host_api.get(a.url("/sites"), headers={"Host": host, "X-Tenant": a.slug, **a.headers})
        assert agreed.status_code == 200, (host, agreed.text)


async def test_a_host_disagreeing_with_the_path_or_header_is_400_without_naming_the_other_tenant(
    host_api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    (a, a_sub, a_own), (b, b_sub, _) = await asyncio.gather(
        _tenant(make_api_tenant), _tenant(make_api_tenant)
    )
    attempts = [
        ("GET", b.url("/sites"), {"Host": a_sub}),  # host A, path B
        ("GET", "/sites", {"Host": a_own, "X-Tenant": b.slug}),  # host A, header B
        ("GET", a.url("/sites"), {"Host": b_sub}),  # path A, host B
        ("POST", "/sites", {"Host": b_sub, "X-Tenant": a.slug}),
    ]
    for method, path, headers in attempts:
        for credential in (a.headers, b.headers):
            answer = await host_api.request(
                method, path, json={"name": "X"}, headers={**headers, **credential}
            )
            assert answer.status_code == 400, (path, headers, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["type"].endswith("ambiguous-tenant")
            for leaked in (*_names(a.tenant), *_names(b.tenant)):
                assert leaked not in answer.text, (path, headers)
    # Nothing was written to either tenant.
    for t, host in ((a, a_sub), (b, b_sub)):
        listed = await host_api.get("/sites", headers={"Host": host, **t.headers})
        assert listed.json()["items"] == []


async def test_a_host_disagreeing_with_the_credential_is_the_missing_tenant_404(
    host_api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    (a, a_sub, a_own), (b, _, _) = await asyncio.gather(
        _tenant(make_api_tenant, placement), _tenant(make_api_tenant, placement)
    )
    missing = await host_api.get("/t/no-such-tenant-000/sites", headers=b.headers)
    assert missing.status_code == 404
    for host in (a_sub, a_own):
        foreign = await host_api.get("/sites", headers={"Host": host, **b.headers})
        assert foreign.status_code == 404, foreign.text
        assert _body(foreign) == _body(missing)
        assert a.slug not in foreign.text
    # Without a credential: 401 before any lookup, whatever the host.
    assert (await host_api.get("/sites", headers={"Host": a_sub})).status_code == 401


async def test_an_unknown_host_of_the_base_domain_is_the_missing_tenant_404(
    host_api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    a, _, _ = await _tenant(make_api_tenant)
    missing = await host_api.get("/t/no-such-tenant-000/sites", headers=a.headers)
    for host in (f"nobody-{uuid.uuid4().hex[:8]}.{BASE}", f"NOBODY-X.{BASE}:443"):
        unknown = await host_api.get("/sites", headers={"Host": host, **a.headers})
        assert unknown.status_code == 404, (host, unknown.text)
        assert _body(unknown) == _body(missing)
    # Our own host names, IP addresses and single labels name nothing: the credential decides.
    for host in (f"api.{BASE}", f"www.{BASE}", BASE, "127.0.0.1:8000", "localhost", "[::1]:8000"):
        own = await host_api.get("/sites", headers={"Host": host, **a.headers})
        assert own.status_code == 200, (host, own.text)
