"""The camera's counting configuration is checked when it is saved, not when a device fetches it."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.api import ApiTenantFactory


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"line": [0, 0, 10]}, "config.line"),
        ({"line": [5, 5, 5, 5]}, "config.line"),
        ({"line": ["a", 0, 1, 1]}, "config.line"),
        ({"line": [0, 0, 1e12, 1]}, "config.line"),
        ({"detector": "yolo9000"}, "config.detector"),
        ({"anchor": "top"}, "config.anchor"),
        ({"interval_seconds": 0}, "config.interval_seconds"),
        ({"interval_seconds": True}, "config.interval_seconds"),
    ],
)
async def test_a_malformed_counting_config_is_refused_with_the_field_named(
    api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory, config: dict[str, object], field: str
) -> None:
    tenant = await make_api_tenant("pooled")
    site = await api.post(
        f"/t/{tenant.slug}/sites", json={"name": "HQ", "timezone": "UTC"}, headers=tenant.headers
    )
    assert site.status_code == 201, site.text
    answer = await api.post(
        f"/t/{tenant.slug}/cameras",
        json={"site_id": site.json()["id"], "name": "door", "config": config},
        headers=tenant.headers,
    )
    assert answer.status_code == 422, answer.text
    assert field in answer.text
    good = {
        "line": [0, 180, 640, 180],
        "detector": "motion",
        "anchor": "bottom_center",
        "interval_seconds": 60,
    }
    ok = await api.post(
        f"/t/{tenant.slug}/cameras", json={"site_id": site.json()["id"], "name": "door", "config": good},
        headers=tenant.headers,
    )  # fmt: skip
    assert ok.status_code == 201, ok.text
    assert ok.json()["config"] == good


async def test_business_hours_off_the_quarter_hour_are_refused_when_saved(
    api: httpx.AsyncClient, make_api_tenant: ApiTenantFactory
) -> None:
    # The count queries filter 15-minute rollups by business hours; 08:05 could not be exact.
    tenant = await make_api_tenant("pooled")
    bad = await api.post(f"/t/{tenant.slug}/sites", json={"name": "HQ", "timezone": "UTC",
                         "business_hours": {"mon": [["08:05", "18:00"]]}}, headers=tenant.headers)  # fmt: skip
    assert bad.status_code == 422, bad.text
    assert "business_hours" in bad.text
    good = await api.post(f"/t/{tenant.slug}/sites", json={"name": "HQ", "timezone": "UTC",
                          "business_hours": {"mon": [["08:15", "18:00"]]}}, headers=tenant.headers)  # fmt: skip
    assert good.status_code == 201, good.text
