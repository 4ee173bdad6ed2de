"""Property-based API tests: schemathesis over the served OpenAPI schema, in process, with the lifespan.

The app is a fresh ``create_app(settings)``; schemathesis runs it (and its lifespan: pools, cache,
resolver) on its own event-loop thread, so its pools never meet the test session's loop. Requests
carry a real owner token of a real tenant (schema placement: ids start at 1, so generated small ids
often hit real rows) for tenant routes, and a real operator token for ``/admin`` and ``/metrics``.
Tenant paths always name that tenant (a random slug would only ever get the 404 of a missing
tenant); ``/admin`` paths name a second, disposable tenant for the non-destructive actions.

Checks: no 5xx, and the answer conforms to the schema (status code, content type, body).
Examples per operation are bounded (``EXAMPLES``) so the whole run stays well under a minute.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from camcount.app import create_app
from camcount.config import Settings
from camcount.db.pools import Database
from camcount.tenancy.models import Tenant
from tests.fixtures.api import ApiTenant, ApiTenantFactory
from tests.fixtures.tenants import TenantFactory

# Per operation and generation mode; raise it for a deeper hunt: SCHEMATHESIS_EXAMPLES=200.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
if os.environ.get("SCHEMATHESIS_ALL_CHECKS"):
    CHECKS = None  # type: ignore[assignment]
OPERATOR_PREFIXES = ("/admin", "/metrics")
# Admin actions that would take the disposable tenant away from the rest of the run.
DESTRUCTIVE_ADMIN = ("/suspend", "/deactivate", "/activate")


@pytest.fixture(scope="module")
def schema_app(api_settings: Settings, db: Database) -> Iterator[FastAPI]:
    # ``db``: the worker's database exists and is initialised before the lifespan opens it.
    app = create_app(api_settings.model_copy(update={"limits_enforced": False}))
    yield app
    schemathesis_asgi.shutdown_lifespans()  # closes the app's pools on schemathesis's loop


@pytest.fixture
def served_schema(schema_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", schema_app)


@pytest.fixture
async def owner(api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory) -> ApiTenant:
    """A schema-placement tenant with a site, a camera, a device key and a second user (ids 1, 2)."""
    t = await make_api_tenant("schema")
    site = await api.post(t.url("/sites"), json={"name": "HQ", "timezone": "Europe/Paris"}, headers=t.headers)
    assert site.status_code == 201, site.text
    camera = await api.post(
        t.url("/cameras"), json={"site_id": site.json()["id"], "name": "Door"}, headers=t.headers
    )
    assert camera.status_code == 201, camera.text
    key = await api.post(
        t.url("/keys"), json={"name": "edge", "camera_id": camera.json()["id"]}, headers=t.headers
    )
    assert key.status_code == 201, key.text
    viewer = {"username": "viewer", "email": "v@example.com", "role": "viewer", "password": "viewer-pass-1"}
    assert (await api.post(t.url("/users"), json=viewer, headers=t.headers)).status_code == 201
    return t


@pytest.fixture
async def admin_target(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant("pooled", slug=f"adm-{uuid.uuid4().hex[:10]}")


def _prepare(case: Any, owner: ApiTenant, operator: dict[str, str], admin_slug: str) -> dict[str, str]:
    """Point the case at the real tenants; returns the credential headers to send."""
    path: str = case.operation.path
    case.headers = {
        k: v for k, v in (case.headers or {}).items() if k.lower() not in ("x-tenant", "authorization")
    }
    params = case.path_parameters if case.path_parameters is not None else {}
    if path.startswith(OPERATOR_PREFIXES):
        destructive = path.endswith(DESTRUCTIVE_ADMIN) or path == "/admin/tenants/{slug}"
        if "slug" in params and not destructive:
            params["slug"] = admin_slug
        return operator
    if "slug" in params:
        params["slug"] = owner.slug
    return owner.headers


def test_no_operation_answers_5xx_and_answers_conform_to_the_schema(
    served_schema: Any, owner: ApiTenant, operator_headers: dict[str, str], admin_target: Tenant
) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in served_schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck), database=None,
            )  # fmt: skip
            def run(case: Any) -> None:
                auth = _prepare(case, owner, operator_headers, admin_target.slug)
                case.call_and_validate(headers=auth, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to negate (an operation without parameters)
            except Exception as exc:  # collected: one run reports every failing operation
                failures.append(f"{operation.label} [{mode}]: {exc}")
    assert not failures, "\n\n".join(failures)
