import httpx

from tests.fixtures.api import ApiTenantFactory


async def test_healthz_answers_without_credentials(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_says_the_database_is_reachable_and_migrated(api: httpx.AsyncClient) -> None:
    response = await api.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "database": True, "migrations_current": True}


async def test_an_owner_logs_in_and_gets_a_bearer_token(make_api_tenant: ApiTenantFactory) -> None:
    tenant = await make_api_tenant("pooled")
    assert tenant.token.count(".") == 2
