"""Every tenant endpoint of the API core, in every placement, attacked with another tenant's
credentials and ids: the answer is the 404 of a tenant that does not exist, byte for byte."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from camcount.cache import Cache
from camcount.db.pools import Database
from camcount.tenancy.lifecycle import set_status
from camcount.tenancy.models import Status
from tests.fixtures.api import ApiTenant, ApiTenantFactory

MISSING = "no-such-tenant-0000"


def _without_request_id(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body.pop("request_id")
    return dict(body)


async def _populate(api: httpx.AsyncClient, t: ApiTenant) -> dict[str, int | str]:
    site = await api.post(t.url("/sites"), json={"name": "HQ", "timezone": "Europe/Paris"}, headers=t.headers)
    assert site.status_code == 201, site.text
    camera = await api.post(
        t.url("/cameras"), json={"site_id": site.json()["id"], "name": "Door", "config": {"line": [0, 180, 640, 180]}},
        headers=t.headers,
    )  # fmt: skip
    assert camera.status_code == 201, camera.text
    user = await api.post(
        t.url("/users"), json={"username": "ana", "email": "ana@example.com", "role": "viewer", "password": "s3cret-pass"},
        headers=t.headers,
    )  # fmt: skip
    assert user.status_code == 201, user.text
    key = await api.post(
        t.url("/keys"), json={"name": "edge", "camera_id": camera.json()["id"]}, headers=t.headers
    )
    assert key.status_code == 201, key.text
    assert key.json()["key"].startswith("ck_")
    return {
        "site": site.json()["id"], "camera": camera.json()["id"], "user": user.json()["id"],
        "key": key.json()["id"], "device_key": key.json()["key"],
    }  # fmt: skip


def _endpoints(ids: dict[str, int | str]) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", "/sites", None),
        ("POST", "/sites", {"name": "Intruder"}),
        ("GET", f"/sites/{ids['site']}", None),
        ("PATCH", f"/sites/{ids['site']}", {"name": "Renamed"}),
        ("DELETE", f"/sites/{ids['site']}", None),
        ("GET", "/cameras", None),
        ("POST", "/cameras", {"site_id": ids["site"], "name": "Intruder"}),
        ("GET", f"/cameras/{ids['camera']}", None),
        ("PATCH", f"/cameras/{ids['camera']}", {"name": "Renamed"}),
        ("DELETE", f"/cameras/{ids['camera']}", None),
        ("GET", "/users", None),
        (
            "POST",
            "/users",
            {"username": "eve", "email": "eve@example.com", "role": "owner", "password": "intruder-pass"},
        ),
        ("GET", f"/users/{ids['user']}", None),
        ("PATCH", f"/users/{ids['user']}", {"role": "owner"}),
        ("DELETE", f"/users/{ids['user']}", None),
        ("GET", "/keys", None),
        ("POST", "/keys", {"name": "stolen", "camera_id": ids["camera"]}),
        ("GET", f"/keys/{ids['key']}", None),
        ("PATCH", f"/keys/{ids['key']}", {"name": "Renamed"}),
        ("POST", f"/keys/{ids['key']}/revoke", None),
        ("DELETE", f"/keys/{ids['key']}", None),
    ]


async def test_another_tenants_credentials_and_ids_get_the_missing_tenant_404_everywhere(
    api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    a, b = await asyncio.gather(make_api_tenant(placement), make_api_tenant(placement))
    ids_a, ids_b = await _populate(api, a), await _populate(api, b)
    device_a = {"Authorization": f"Bearer {ids_a['device_key']}"}
    for method, path, body in _endpoints(ids_b):
        missing = await api.request(method, f"/t/{MISSING}{path}", json=body, headers=a.headers)
        assert missing.status_code == 404, (method, path, missing.text)
        expected = _without_request_id(missing)
        assert b.slug not in missing.text
        # A's token on B's routes, and A's device key on B's routes: exactly the missing tenant.
        for headers in (a.headers, device_a):
            foreign = await api.request(method, b.url(path), json=body, headers=headers)
            assert foreign.status_code == 404, (method, path, foreign.text)
            assert _without_request_id(foreign) == expected, (method, path)
        # B's ids on A's routes with A's token: not found (RLS hides them), never B's data. In
        # schema and database placements ids are counted per tenant, so B's id may be A's own.
        own_ids = {str(ids_a[k]) for k in ("site", "camera", "user", "key")}
        referenced = set(path.split("/")[2:]) | {str(v) for k, v in (body or {}).items() if k.endswith("_id")}
        if referenced and not own_ids & referenced:
            crossed = await api.request(method, a.url(path), json=body, headers=a.headers)
            assert crossed.status_code in (404, 422), (method, path, crossed.text)
    # B is untouched.
    for collection, expected_count in (("/sites", 1), ("/cameras", 1), ("/users", 2), ("/keys", 1)):
        listed = await api.get(b.url(collection), headers=b.headers)
        assert listed.status_code == 200
        assert len(listed.json()["items"]) == expected_count, collection
    camera = await api.get(b.url(f"/cameras/{ids_b['camera']}"), headers=b.headers)
    assert camera.json()["name"] == "Door"


async def test_a_device_key_reads_only_the_camera_in_its_scope(
    api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    a = await make_api_tenant(placement)
    ids = await _populate(api, a)
    other = await api.post(
        a.url("/cameras"), json={"site_id": ids["site"], "name": "Back"}, headers=a.headers
    )
    device = {"Authorization": f"Bearer {ids['device_key']}"}
    own = await api.get(a.url(f"/cameras/{ids['camera']}"), headers=device)
    assert own.status_code == 200
    assert own.json()["config"] == {"line": [0, 180, 640, 180]}
    assert (await api.get(a.url(f"/cameras/{other.json()['id']}"), headers=device)).status_code == 404
    assert (await api.get(a.url("/sites"), headers=device)).status_code == 403
    revoked = await api.post(a.url(f"/keys/{ids['key']}/revoke"), headers=a.headers)
    assert revoked.json()["revoked_at"] is not None
    assert (await api.get(a.url(f"/cameras/{ids['camera']}"), headers=device)).status_code == 401


async def test_suspended_is_403_inactive_is_the_missing_404_and_disagreeing_sources_are_400(
    api: httpx.AsyncClient, api_app: Any, db: Database, make_api_tenant: ApiTenantFactory, placement: str
) -> None:
    a, b = await asyncio.gather(make_api_tenant(placement), make_api_tenant(placement))
    cache: Cache = api_app.state.cache
    assert (await api.get(a.url("/sites"), headers={"X-Tenant": b.slug, **a.headers})).status_code == 400
    disagree = await api.get(a.url("/sites"), headers={"X-Tenant": MISSING, **a.headers})
    assert disagree.status_code == 400
    assert MISSING not in disagree.json()["detail"]
    assert (await api.get(a.url("/sites"), headers={"X-Tenant": a.slug, **a.headers})).status_code == 200
    # Without the path prefix: the header or the credential names the tenant.
    assert (await api.get("/sites", headers={"X-Tenant": a.slug, **a.headers})).status_code == 200
    assert (await api.get("/sites", headers=a.headers)).status_code == 200
    assert (await api.get(a.url("/sites"))).status_code == 401
    assert (await api.get(f"/t/{MISSING}/sites")).status_code == 401  # no probing without a credential

    await set_status(db, a.slug, Status.SUSPENDED, actor="test")
    await cache.invalidate_tenant(a.tenant.id)
    suspended = await api.get(a.url("/sites"), headers=a.headers)
    assert suspended.status_code == 403
    assert "suspended" in suspended.json()["detail"]
    assert suspended.headers["content-type"] == "application/problem+json"
    # Another tenant's credential learns nothing about A's status.
    assert (await api.get(a.url("/sites"), headers=b.headers)).status_code == 404

    await set_status(db, a.slug, Status.INACTIVE, actor="test")
    await asyncio.sleep(0.6)  # the fixture's tenant_cache_seconds: no explicit invalidation needed
    inactive = await api.get(a.url("/sites"), headers=a.headers)
    missing = await api.get(f"/t/{MISSING}/sites", headers=a.headers)
    assert inactive.status_code == 404
    assert _without_request_id(inactive) == _without_request_id(missing)


async def test_roles_follow_the_permission_table(
    api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    a = await make_api_tenant("pooled")
    ids = await _populate(api, a)
    token = (await api.post(a.url("/auth/token"), data={"username": "ana", "password": "s3cret-pass"})).json()
    viewer = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await api.get(a.url(f"/cameras/{ids['camera']}"), headers=viewer)).status_code == 200
    assert (await api.post(a.url("/sites"), json={"name": "X"}, headers=viewer)).status_code == 403
    assert (await api.get(a.url("/users"), headers=viewer)).status_code == 403
    wrong = await api.post(a.url("/auth/token"), data={"username": "ana", "password": "wrong-password"})
    assert wrong.status_code == 401
    assert "password_hash" not in (await api.get(a.url("/users"), headers=a.headers)).text
