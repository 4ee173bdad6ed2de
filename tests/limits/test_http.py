"""Limits over HTTP: 429 with RateLimit headers, quotas naming their reset, usage and invoices per tenant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from camcount.app import create_app
from camcount.billing.cycles import run_billing
from camcount.config import Settings
from camcount.db.pools import Database
from camcount.limits.plans import set_tenant_limit
from camcount.limits.storage import measure_storage
from tests.counting.helpers import make_camera, make_device_key, make_site
from tests.fixtures.api import ApiTenant, ApiTenantFactory


@pytest.fixture(scope="module")
async def limited_app(api_settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    """The API with rate limits and quotas on (the shared test app runs without them)."""
    app = create_app(api_settings.model_copy(update={"limits_enforced": True}))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def limited(limited_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_a_tenant_over_its_rate_gets_429_with_headers_and_another_tenant_does_not(
    db: Database, limited: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    noisy, quiet = await make_api_tenant(), await make_api_tenant()
    await set_tenant_limit(db, noisy.slug, "requests_per_second", 3, actor="test")
    answers = [await limited.get(noisy.url("/sites"), headers=noisy.headers) for _ in range(8)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert answers[0].headers["RateLimit-Policy"] == "3;w=1"
    assert int(answers[1].headers["RateLimit-Remaining"]) < int(answers[0].headers["RateLimit-Remaining"])
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) >= 4
    first = refused[0]
    assert first.headers["content-type"] == "application/problem+json"
    assert first.json()["detail"].startswith("rate limit exceeded: 3 requests per second for this tenant")
    assert first.json()["type"].endswith("rate-limited")
    assert 1 <= int(first.headers["Retry-After"]) <= 2
    assert first.headers["RateLimit-Remaining"] == "0"
    # Later refusals of the same credential are answered from memory, with the same problem and headers.
    assert all(r.headers["RateLimit-Limit"] == "3" and "Retry-After" in r.headers for r in refused)
    assert all(r.json()["detail"].startswith("rate limit exceeded: 3 requests") for r in refused)
    other = await limited.get(quiet.url("/sites"), headers=quiet.headers)
    assert other.status_code == 200
    assert other.headers["RateLimit-Limit"] == "50"  # the standard plan's rate


async def test_a_device_key_has_its_own_smaller_bucket(
    db: Database, limited: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    owner = await make_api_tenant()
    await set_tenant_limit(db, owner.slug, "device_requests_per_second", 2, actor="test")
    site = await make_site(db, owner.tenant)
    camera = await make_camera(db, owner.tenant, site)
    key = await make_device_key(db, owner.tenant, camera_id=camera)
    device = {"Authorization": f"Bearer {key}"}
    codes = [
        (await limited.post(owner.url("/events"), json={"events": []}, headers=device)).status_code
        for _ in range(5)
    ]
    assert codes[:2] == [200, 200]
    assert 429 in codes
    assert (await limited.get(owner.url("/sites"), headers=owner.headers)).status_code == 200


async def test_the_daily_quota_refusal_names_the_quota_and_its_local_reset(
    db: Database, limited: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    owner = await make_api_tenant(timezone="Asia/Kolkata")
    await set_tenant_limit(db, owner.slug, "api_calls_per_day", 2, actor="test")
    assert [
        (await limited.get(owner.url("/sites"), headers=owner.headers)).status_code for _ in range(2)
    ] == [200, 200]
    refused = await limited.get(owner.url("/sites"), headers=owner.headers)
    assert refused.status_code == 429
    detail = refused.json()["detail"]
    assert detail.startswith("quota exceeded: api_calls_per_day 2 of 2; resets at ")
    assert "T00:00:00+05:30" in detail
    assert refused.json()["type"].endswith("quota-exceeded")
    retry = int(refused.headers["Retry-After"])
    assert 0 < retry <= 24 * 3600


async def test_ingestion_over_the_storage_limit_is_507_and_events_count_against_their_quota(
    db: Database, limited: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    owner = await make_api_tenant("schema")
    site = await make_site(db, owner.tenant)
    camera = await make_camera(db, owner.tenant, site)
    now = datetime.now(UTC) - timedelta(minutes=1)
    batch = {"events": [{"event_id": f"e{i}", "camera_id": camera, "count_type": "in", "count_value": 1,
                         "occurred_at": now.isoformat()} for i in range(3)]}  # fmt: skip
    await set_tenant_limit(db, owner.slug, "events_per_month", 4, actor="test")
    assert (await limited.post(owner.url("/events"), json=batch, headers=owner.headers)).status_code == 200
    fresh = {"events": [{**e, "event_id": f"new-{e['event_id']}"} for e in batch["events"]]}
    over = await limited.post(owner.url("/events"), json=fresh, headers=owner.headers)
    assert over.status_code == 429
    assert over.json()["detail"].startswith("quota exceeded: events_per_month 3 of 4")
    await set_tenant_limit(db, owner.slug, "storage_gb", 0, actor="test")
    await measure_storage(db, now=datetime.now(UTC))
    full = await limited.post(
        owner.url("/events"), json={"events": batch["events"][:1]}, headers=owner.headers
    )
    assert full.status_code == 507
    assert full.json()["detail"].startswith("storage limit reached: storage_gb ")
    assert "raised" in full.json()["detail"]


async def test_usage_and_invoices_are_the_tenants_own_and_admins_see_all(
    db: Database, api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory, operator_headers: dict[str, str]
) -> None:
    a, b = await make_api_tenant(), await make_api_tenant()
    await set_tenant_limit(db, a.slug, "sites", 2, actor="test")
    await make_site(db, a.tenant, name="one")
    usage = await api.get(a.url("/usage"), headers=a.headers)
    assert usage.status_code == 200, usage.text
    sites = next(r for r in usage.json()["resources"] if r["resource"] == "sites")
    assert (sites["limit"], sites["usage"], sites["percent"], sites["status"]) == (2, "1", "50.00", "MEDIUM")

    async def _invoice(t: ApiTenant) -> int:
        async with db.owner() as conn, conn.transaction():
            await conn.execute(
                "UPDATE control.tenants SET created_at = '2026-01-01' WHERE id = %s", (t.tenant.id,)
            )
        (inv,) = (await run_billing(db, "2026-02", actor="test", tenant_slug=t.slug)).created
        return inv.id

    invoice_a, invoice_b = await _invoice(a), await _invoice(b)
    mine = await api.get(a.url("/invoices"), headers=a.headers)
    assert [i["id"] for i in mine.json()["items"]] == [invoice_a]
    assert mine.json()["items"][0]["total_amount"] == "99.99"
    assert (await api.get(a.url(f"/invoices/{invoice_b}"), headers=a.headers)).status_code == 404
    csv_text = (await api.get(a.url("/invoices.csv"), headers=a.headers)).text
    assert a.slug in csv_text
    assert b.slug not in csv_text

    everything = await api.get("/admin/invoices", params={"tenant": b.slug}, headers=operator_headers)
    assert [i["id"] for i in everything.json()["items"]] == [invoice_b]
    assert (await api.get("/admin/invoices", headers=a.headers)).status_code == 401
    paid = await api.post(
        f"/admin/invoices/{invoice_b}/status", json={"status": "paid"}, headers=operator_headers
    )
    assert paid.json()["status"] == "paid"
    back = await api.post(
        f"/admin/invoices/{invoice_b}/status", json={"status": "pending"}, headers=operator_headers
    )
    assert back.status_code == 409
    reached = await api.get(
        "/admin/usage", params={"status": "MEDIUM", "tenant": a.slug}, headers=operator_headers
    )
    assert [r["resource"] for r in reached.json()] == ["sites"]
    assert (
        await api.get("/admin/usage", params={"status": "nope"}, headers=operator_headers)
    ).status_code == 422


async def test_the_operator_manages_plans_over_http(
    api: httpx.AsyncClient, operator_headers: dict[str, str]
) -> None:
    code = f"http-{uuid.uuid4().hex[:8]}"
    body = {
        "code": code,
        "name": "HTTP",
        "base_price": "19.90",
        "requests_per_second": 7,
        "copy_from": "basic",
    }
    created = await api.post("/admin/plans", json=body, headers=operator_headers)
    assert created.status_code == 201, created.text
    assert created.json()["limits"]["cameras"]["limit"] == 5
    assert (await api.post("/admin/plans", json=body, headers=operator_headers)).status_code == 409
    limit = await api.put(f"/admin/plans/{code}/limits/cameras", json={"limit": 7}, headers=operator_headers)
    assert limit.json()["limits"]["cameras"]["limit"] == 7
    price = await api.put(
        f"/admin/plans/{code}/prices/events", json={"unit_price": "0.0002"}, headers=operator_headers
    )
    assert price.json()["prices"]["events"] == "0.0002"
    patched = await api.patch(f"/admin/plans/{code}", json={"base_price": "21.00"}, headers=operator_headers)
    assert patched.json()["base_price"] == "21.00"
    for bad in ({"base_price": "1.001"}, {"base_price": -1}, {"requests_per_second": 0}, {"colour": "red"}):
        assert (
            await api.patch(f"/admin/plans/{code}", json=bad, headers=operator_headers)
        ).status_code == 422
    assert (await api.get("/admin/plans/nope", headers=operator_headers)).status_code == 404


async def test_a_retried_batch_does_not_use_the_events_quota_again(
    db: Database, limited: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    owner = await make_api_tenant()
    camera = await make_camera(db, owner.tenant, await make_site(db, owner.tenant))
    now = datetime.now(UTC) - timedelta(minutes=1)

    def batch(prefix: str, n: int) -> dict[str, list[dict[str, object]]]:
        return {"events": [{"event_id": f"{prefix}{i}", "camera_id": camera, "count_type": "in", "count_value": 1,
                            "occurred_at": now.isoformat()} for i in range(n)]}  # fmt: skip

    await set_tenant_limit(db, owner.slug, "events_per_month", 10, actor="test")
    first = await limited.post(owner.url("/events"), json=batch("a", 4), headers=owner.headers)
    assert first.json()["accepted"] == 4
    retry = await limited.post(owner.url("/events"), json=batch("a", 4), headers=owner.headers)
    assert retry.json()["duplicate"] == 4  # stored nothing, so it costs nothing
    rest = await limited.post(owner.url("/events"), json=batch("b", 6), headers=owner.headers)
    assert rest.status_code == 200, rest.text  # 4 + 6 = 10: exactly the limit
    assert rest.json()["accepted"] == 6
    over = await limited.post(owner.url("/events"), json=batch("c", 1), headers=owner.headers)
    assert over.status_code == 429
    assert over.json()["detail"].startswith("quota exceeded: events_per_month 10 of 10")


async def test_near_the_limit_a_retry_of_stored_events_is_answered_not_refused(
    db: Database, limited: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    # A device whose batch was stored but whose answer was lost retries it: with the quota nearly
    # used up, the retry must come back "duplicate", not 429 until the month ends.
    owner = await make_api_tenant("schema")
    camera = await make_camera(db, owner.tenant, await make_site(db, owner.tenant))
    now = datetime.now(UTC) - timedelta(minutes=1)

    def events(ids: list[str]) -> dict[str, list[dict[str, object]]]:
        return {"events": [{"event_id": i, "camera_id": camera, "count_type": "in", "count_value": 1,
                            "occurred_at": now.isoformat()} for i in ids]}  # fmt: skip

    stored = [f"s{i}" for i in range(8)]
    await set_tenant_limit(db, owner.slug, "events_per_month", 10, actor="test")
    assert (await limited.post(owner.url("/events"), json=events(stored), headers=owner.headers)).json()[
        "accepted"
    ] == 8
    retry = await limited.post(owner.url("/events"), json=events(stored), headers=owner.headers)
    assert retry.status_code == 200, retry.text
    assert retry.json()["duplicate"] == 8
    too_many = await limited.post(
        owner.url("/events"), json=events([*stored, "n1", "n2", "n3"]), headers=owner.headers
    )
    assert too_many.status_code == 429  # 3 new events do not fit in the 2 left
    fits = await limited.post(owner.url("/events"), json=events([*stored, "n1", "n2"]), headers=owner.headers)
    assert fits.status_code == 200, fits.text
    assert (fits.json()["accepted"], fits.json()["duplicate"]) == (2, 8)


async def test_a_changed_limit_or_plan_rate_applies_from_the_next_request(
    limited: httpx.AsyncClient, make_api_tenant: ApiTenantFactory, operator_headers: dict[str, str]
) -> None:
    """Rates are cached per process, but a change through /admin drops them at once (not after 10 s)."""
    tenant = await make_api_tenant()

    async def rate() -> str:
        answer = await limited.get(tenant.url("/sites"), headers=tenant.headers)
        assert answer.status_code == 200, answer.text
        return answer.headers["RateLimit-Limit"]

    async def admin(method: str, path: str, body: dict[str, object] | None = None) -> None:
        answer = await limited.request(method, f"/admin{path}", json=body, headers=operator_headers)
        assert answer.status_code in (200, 201), answer.text

    assert await rate() == "50"  # the standard plan's rate, now cached
    await admin("PUT", f"/tenants/{tenant.slug}/limits/requests_per_second", {"limit": 40})
    assert await rate() == "40"
    await admin("DELETE", f"/tenants/{tenant.slug}/limits/requests_per_second")
    assert await rate() == "50"
    # A plan of its own (other tests use the standard plan), then a change to the plan's rate.
    code = f"rates-{uuid.uuid4().hex[:8]}"
    await admin("POST", "/plans", {"code": code, "name": code, "base_price": "0", "requests_per_second": 30,
                                   "copy_from": "standard"})  # fmt: skip
    await admin("PUT", f"/tenants/{tenant.slug}/plan", {"plan": code})
    assert await rate() == "30"
    await admin("PATCH", f"/plans/{code}", {"requests_per_second": 20})
    assert await rate() == "20"
