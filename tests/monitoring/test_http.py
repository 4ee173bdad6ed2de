"""The monitoring endpoints, /metrics and the access log over HTTP."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from camcount.db.pools import Database
from camcount.monitoring.logs import JsonFormatter
from camcount.monitoring.tenant_metrics import tenant_metrics
from tests.fixtures.api import OWNER_PASSWORD, ApiTenantFactory
from tests.jobs.helpers import add_camera

AT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def wire(camera_id: int, event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "camera_id": camera_id, "count_type": "in", "count_value": 1,
            "confidence": 0.8, "occurred_at": AT.isoformat()}  # fmt: skip


async def scrape(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def ingested(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], outcome: str) -> float:
    return samples.get(("camcount_ingestion_events_total", (("outcome", outcome),)), 0.0)


async def test_metrics_need_an_operator_token(
    api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    assert (await api.get("/metrics")).status_code == 401
    tenant = await make_api_tenant("pooled")
    assert (await api.get("/metrics", headers=tenant.headers)).status_code in (401, 403)


async def test_the_exposition_parses_and_ingestion_counters_move_by_exactly_the_batch(
    api: httpx.AsyncClient,
    api_app: FastAPI,
    db: Database,
    make_api_tenant: ApiTenantFactory,
    operator_headers: dict[str, str],
) -> None:
    owner = await make_api_tenant("schema")
    camera = await add_camera(db, owner.tenant)
    before = await scrape(api, operator_headers)
    batch = {"events": [wire(camera, "a"), wire(camera, "b"), wire(camera, "a"), wire(999_999, "c")]}
    first = await api.post(owner.url("/events"), json=batch, headers=owner.headers)
    assert first.status_code == 200, first.text
    retry = await api.post(owner.url("/events"), json={"events": [wire(camera, "b")]}, headers=owner.headers)
    assert retry.json()["duplicate"] == 1
    after = await scrape(api, operator_headers)

    assert ingested(after, "accepted") - ingested(before, "accepted") == 2
    assert ingested(after, "duplicate") - ingested(before, "duplicate") == 2  # one in the batch, one retried
    assert ingested(after, "rejected") - ingested(before, "rejected") == 1
    route = (("method", "POST"), ("route", "/t/{slug}/events"), ("status", "200"))
    assert (
        after[("camcount_http_requests_total", route)]
        - before.get(("camcount_http_requests_total", route), 0)
        == 2
    )
    assert any(name == "camcount_http_request_duration_seconds_bucket" for name, _ in after)
    assert any(name == "camcount_tenants" for name, _ in after)
    assert any(name == "camcount_db_pool_connections" for name, _ in after)
    # No metric carries a tenant label (the number of series stays bounded).
    assert not any(label == "tenant" or value == owner.slug for _, labels in after for label, value in labels)

    # The same outcomes reach the tenant's own counters (and so its error rate).
    await api_app.state.ingestion_counters.flush()  # what the background task does every 2 s
    [measured] = await tenant_metrics(db, [owner.tenant], now=datetime.now(UTC))
    assert (measured.ingestion_accepted, measured.ingestion_duplicate, measured.ingestion_rejected) == (
        2,
        2,
        1,
    )


async def test_admin_health_and_tenant_metrics(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory, operator_headers: dict[str, str]
) -> None:
    owner = await make_api_tenant("database")
    await add_camera(db, owner.tenant)
    assert (await api.get("/admin/health")).status_code == 401
    assert (await api.get("/admin/health", headers=owner.headers)).status_code in (401, 403)

    response = await api.get("/admin/health", headers=operator_headers)
    assert response.status_code == 200, response.text
    mine = [item for item in response.json()["items"] if item["tenant"] == owner.slug]
    assert len(mine) == 1
    assert mine[0]["status"] in ("HEALTHY", "WARNING", "CRITICAL")
    status = mine[0]["status"]
    filtered = await api.get("/admin/health", params={"status": status}, headers=operator_headers)
    assert {i["status"] for i in filtered.json()["items"]} == {status}
    assert (
        await api.get("/admin/health", params={"status": "FINE"}, headers=operator_headers)
    ).status_code == 422

    metrics = await api.get(f"/admin/tenants/{owner.slug}/metrics", headers=operator_headers)
    assert metrics.status_code == 200, metrics.text
    assert (metrics.json()["tenant"], metrics.json()["cameras"], metrics.json()["storage_method"]) == (
        owner.slug, 1, "exact",
    )  # fmt: skip
    missing = await api.get("/admin/tenants/no-such-tenant/metrics", headers=operator_headers)
    assert missing.status_code == 404


async def test_a_tenant_sees_its_own_cameras_health_only(
    api: httpx.AsyncClient, db: Database, make_api_tenant: ApiTenantFactory
) -> None:
    owner = await make_api_tenant("pooled")
    other = await make_api_tenant("pooled")
    camera = await add_camera(db, owner.tenant, created_at=datetime.now(UTC) - timedelta(days=1), name="gate")
    await add_camera(db, other.tenant, name="elsewhere")
    response = await api.get(owner.url("/health"), headers=owner.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["camera_id"] for c in body["cameras"]] == [camera]
    [silent] = [i for i in body["issues"] if i["check"] == "camera_silent"]
    assert "'gate'" in silent["reason"]
    assert body["status"] == "WARNING"
    assert all(i["check"] not in ("migrations_behind", "partitions_missing") for i in body["issues"])
    crossed = await api.get(owner.url("/health"), headers=other.headers)
    assert crossed.status_code in (401, 403, 404)


async def test_the_access_log_is_json_and_never_holds_a_password_or_token(
    api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    owner = await make_api_tenant("pooled")
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    secret_token = "tok3n-" + owner.token[-12:]
    try:
        login = await api.post(
            owner.url("/auth/token"), data={"username": owner.username, "password": OWNER_PASSWORD},
            headers={"X-Request-ID": "req-login-1"},
        )  # fmt: skip
        assert login.status_code == 200
        wrong = await api.post(
            owner.url("/auth/token") + f"?token={secret_token}&password=hunter2",
            data={"username": owner.username, "password": "hunter2-wrong"},
        )
        assert wrong.status_code in (400, 401, 422)
        sites = await api.get(owner.url("/sites"), headers=owner.headers)
        assert sites.status_code == 200
    finally:
        root.removeHandler(handler)
    text = output.getvalue()
    for secret in (OWNER_PASSWORD, "hunter2", secret_token, owner.token, login.json()["access_token"]):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    access = [line for line in lines if line["logger"] == "camcount.access"]
    assert len(access) == 3
    first = access[0]
    assert first["request_id"] == "req-login-1"
    assert (first["tenant"], first["route"], first["status"], first["method"]) == (
        owner.slug, "/t/{slug}/auth/token", 200, "POST",
    )  # fmt: skip
    assert first["duration_ms"] >= 0
    assert {"time", "level"} <= set(first)
    assert access[2]["route"] == "/t/{slug}/sites"
