"""The operator API: every ``/admin`` tenant and server action works, is audited as
``operator:<name>``, and answers bad input with a 4xx problem+json."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from camcount.accounts import operators
from camcount.db.pools import Database
from tests.fixtures.api import ApiTenantFactory
from tests.fixtures.database import SERVER_URL
from tests.fixtures.tenants import unique_slug


@pytest.fixture
async def operator(db: Database) -> tuple[str, dict[str, str]]:
    name = f"ops-{uuid.uuid4().hex[:10]}"
    _, token = await operators.create_token(db, name, actor="test")
    return name, {"Authorization": f"Bearer {token}"}


async def _audit(db: Database, actor: str) -> list[tuple[str, str | None, Any, Any]]:
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT action, tenant_slug, before, after FROM control.audit_log WHERE actor = %s ORDER BY id",
            (actor,),
        )
        return [tuple(row) for row in await cur.fetchall()]


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def test_every_tenant_action_works_and_is_audited_as_the_operator(
    api: httpx.AsyncClient, db: Database, operator: tuple[str, dict[str, str]]
) -> None:
    name, ops = operator
    slug = unique_slug("adm")
    body = {
        "slug": slug,
        "name": "Acme Doors",
        "plan": "basic",
        "subdomain": slug,
        "timezone": "Europe/Berlin",
    }
    created = _ok(await api.post("/admin/tenants", json=body, headers=ops), 201)
    assert created["slug"] == slug and created["created"] is True and created["status"] == "active"
    assert _ok(await api.post("/admin/tenants", json=body, headers=ops))["created"] is False  # idempotent

    listed = _ok(await api.get("/admin/tenants", headers=ops))
    assert slug in [t["slug"] for t in listed["items"]]
    assert slug in [
        t["slug"] for t in _ok(await api.get("/admin/tenants?status=active", headers=ops))["items"]
    ]
    assert slug not in [
        t["slug"] for t in _ok(await api.get("/admin/tenants?status=suspended", headers=ops))["items"]
    ]
    shown = _ok(await api.get(f"/admin/tenants/{slug}", headers=ops))
    assert (shown["id"], shown["plan"], shown["timezone"]) == (created["id"], "basic", "Europe/Berlin")

    for action, status in (("suspend", "suspended"), ("activate", "active"), ("deactivate", "inactive")):
        assert _ok(await api.post(f"/admin/tenants/{slug}/{action}", headers=ops))["status"] == status
    assert _ok(await api.post(f"/admin/tenants/{slug}/activate", headers=ops))["status"] == "active"

    limits = _ok(await api.put(f"/admin/tenants/{slug}/plan", json={"plan": "premium"}, headers=ops))
    assert {"cameras", "sites"} <= {row["resource"] for row in limits}
    assert _ok(await api.get(f"/admin/tenants/{slug}", headers=ops))["plan"] == "premium"
    assert {row["resource"] for row in _ok(await api.get(f"/admin/tenants/{slug}/limits", headers=ops))} == {
        row["resource"] for row in limits
    }
    overridden = _ok(await api.put(f"/admin/tenants/{slug}/limits/cameras", json={"limit": 7}, headers=ops))
    assert [(r["limit"], r["is_override"]) for r in overridden if r["resource"] == "cameras"] == [(7, True)]
    restored = _ok(await api.delete(f"/admin/tenants/{slug}/limits/cameras", headers=ops))
    assert [r["is_override"] for r in restored if r["resource"] == "cameras"] == [False]

    plain = _ok(
        await api.put(f"/admin/tenants/{slug}/config/display.name", json={"value": "Acme"}, headers=ops)
    )
    assert plain == {"key": "display.name", "type": "string", "secret": False, "value": "Acme"}
    secret_value = "s3cr3t-" + uuid.uuid4().hex
    secret = await api.put(
        f"/admin/tenants/{slug}/config/webhook.token",
        json={"value": secret_value, "secret": True},
        headers=ops,
    )
    assert _ok(secret)["value"] == "********" and secret_value not in secret.text
    configs = await api.get(f"/admin/tenants/{slug}/config", headers=ops)
    values = {c["key"]: c["value"] for c in _ok(configs)}  # with the defaults every tenant has
    assert (values["display.name"], values["webhook.token"]) == ("Acme", "********")
    assert secret_value not in configs.text
    _ok(await api.delete(f"/admin/tenants/{slug}/config/display.name", headers=ops), 204)
    keys = [c["key"] for c in _ok(await api.get(f"/admin/tenants/{slug}/config", headers=ops))]
    assert "webhook.token" in keys and "display.name" not in keys

    _ok(await api.delete(f"/admin/tenants/{slug}", headers=ops), 204)
    assert (await api.get(f"/admin/tenants/{slug}", headers=ops)).status_code == 404

    audited = await _audit(db, f"operator:{name}")
    actions = [action for action, *_ in audited]
    for expected in (
        "tenant.suspended", "tenant.active", "tenant.inactive", "tenant.plan_change", "tenant.limit_set",
        "tenant.limit_unset", "tenant.config.set", "tenant.config.unset", "tenant.delete",
    ):  # fmt: skip
        assert expected in actions, (expected, actions)
    assert any(action.startswith("tenant.create") or action == "tenant.provisioned" for action in actions), (
        actions
    )
    assert all(tenant_slug == slug for _, tenant_slug, *_ in audited)
    assert secret_value not in str(audited)  # secrets never reach the audit log


async def test_servers_are_listed_and_added_and_the_addition_is_audited(
    api: httpx.AsyncClient, db: Database, operator: tuple[str, dict[str, str]]
) -> None:
    name, ops = operator
    before = _ok(await api.get("/admin/servers", headers=ops))
    assert "default" in [s["name"] for s in before["items"]]
    server = f"s{uuid.uuid4().hex[:10]}"
    added = _ok(await api.post("/admin/servers", json={"name": server, "url": SERVER_URL}, headers=ops), 201)
    assert added == {"name": server, "default": False, "host": added["host"], "tenants": 0}
    listed = await api.get("/admin/servers", headers=ops)
    assert server in [s["name"] for s in _ok(listed)["items"]]
    assert "postgresql://" not in listed.text  # hosts only, never the URL with its credentials
    assert ("server.add", None) in [
        (action, slug) for action, slug, *_ in await _audit(db, f"operator:{name}")
    ]
    duplicate = await api.post("/admin/servers", json={"name": server, "url": SERVER_URL}, headers=ops)
    assert duplicate.status_code == 409


async def test_bad_operator_requests_get_a_4xx_problem(
    api: httpx.AsyncClient, operator: tuple[str, dict[str, str]], make_api_tenant: ApiTenantFactory
) -> None:
    _, ops = operator
    owner = await make_api_tenant("pooled")
    slug = owner.slug
    revoked_name = f"gone-{uuid.uuid4().hex[:8]}"
    cases: list[tuple[str, str, dict[str, str], Any, int]] = [
        ("GET", "/admin/tenants", {}, None, 401),
        ("GET", "/admin/tenants", owner.headers, None, 401),  # a tenant owner is no operator
        ("GET", "/admin/tenants", {"Authorization": "Bearer op_xxxxxxxx_" + "a" * 43}, None, 401),
        ("GET", "/admin/tenants", {"Authorization": "Basic b3A6b3A="}, None, 401),
        ("GET", f"/admin/tenants/no-such-{revoked_name}", ops, None, 404),
        ("GET", "/admin/tenants?status=" + "x" * 30, ops, None, 422),
        ("POST", "/admin/tenants", ops, {"slug": "Bad Slug!", "name": "X"}, 422),
        ("POST", "/admin/tenants", ops, {"slug": "admin", "name": "X"}, 422),
        ("POST", "/admin/tenants", ops, {"slug": unique_slug(), "name": "X", "plan": "platinum"}, 422),
        ("POST", "/admin/tenants", ops, {"slug": unique_slug(), "name": "X", "placement": "moon"}, 422),
        (
            "POST",
            "/admin/tenants",
            ops,
            {"slug": unique_slug(), "name": "X", "timezone": "Mars/Olympus"},
            422,
        ),
        ("POST", "/admin/tenants", ops, {"slug": unique_slug(), "name": "X", "server": "nowhere"}, 422),
        ("POST", "/admin/tenants", ops, {"slug": unique_slug(), "name": "X", "surprise": 1}, 422),
        ("POST", "/admin/tenants", ops, {"slug": unique_slug(), "name": "X", "domain": "1.2.3.4"}, 422),
        ("POST", "/admin/tenants", ops, [1, 2], 422),
        ("POST", f"/admin/tenants/no-such-{revoked_name}/suspend", ops, None, 404),
        ("DELETE", f"/admin/tenants/no-such-{revoked_name}", ops, None, 404),
        ("PUT", f"/admin/tenants/{slug}/plan", ops, {"plan": "platinum"}, 422),
        ("PUT", f"/admin/tenants/{slug}/plan", ops, {}, 422),
        ("PUT", f"/admin/tenants/{slug}/limits/cameras", ops, {"limit": -1}, 422),
        ("PUT", f"/admin/tenants/{slug}/limits/cameras", ops, {"limit": 2**70}, 422),
        ("PUT", f"/admin/tenants/{slug}/limits/cameras", ops, {"limit": "many"}, 422),
        ("PUT", f"/admin/tenants/{slug}/limits/Not A Resource", ops, {"limit": 1}, 422),
        (
            "PUT",
            f"/admin/tenants/{slug}/limits/cameras",
            ops,
            {"limit": 1, "reset_period": "fortnightly"},
            422,
        ),
        ("DELETE", f"/admin/tenants/{slug}/limits/unicorns", ops, None, 404),  # no such override
        ("PUT", f"/admin/tenants/{slug}/config/Bad Key", ops, {"value": "x"}, 422),
        ("PUT", f"/admin/tenants/{slug}/config/retries", ops, {"value": "many", "type": "int"}, 422),
        ("PUT", f"/admin/tenants/{slug}/config/retries", ops, {"value": "1", "type": "float128"}, 422),
        ("PUT", f"/admin/tenants/{slug}/config/blob", ops, {"value": "{not json", "type": "json"}, 422),
        ("PUT", f"/admin/tenants/{slug}/config/nul", ops, {"value": "a\x00b"}, 422),
        ("DELETE", f"/admin/tenants/{slug}/config/never.set", ops, None, 404),
        ("PUT", f"/admin/tenants/no-such-{revoked_name}/config/k", ops, {"value": "x"}, 404),
        ("POST", "/admin/servers", ops, {"name": "Bad Name", "url": SERVER_URL}, 422),
        ("POST", "/admin/servers", ops, {"name": "broken", "url": "not a url at all"}, 422),
        (
            "POST",
            "/admin/servers",
            ops,
            {"name": "closed", "url": "postgresql://postgres@127.0.0.1:1/x"},
            422,
        ),
        ("POST", "/admin/servers", ops, {"name": "default", "url": SERVER_URL}, 409),
    ]
    for method, path, headers, body, expected in cases:
        answer = await api.request(method, path, json=body, headers=headers)
        assert answer.status_code == expected, (method, path, body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json", (method, path)
        problem = answer.json()
        assert problem["status"] == expected and problem["request_id"] and problem["detail"]
        assert "Traceback" not in answer.text and "SELECT" not in answer.text
    # Nothing changed for the tenant that bad requests named.
    assert _ok(await api.get(f"/admin/tenants/{slug}", headers=ops))["plan"] == "standard"
