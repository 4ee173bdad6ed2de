"""A per-tenant limit on a resource nothing enforces is refused (a typo would pass silently)."""

from __future__ import annotations

import pytest

from camcount.db.pools import Database
from camcount.errors import InvalidInput
from camcount.limits.plans import set_tenant_limit
from tests.fixtures.tenants import TenantFactory


async def test_an_unknown_resource_is_refused_and_known_ones_are_accepted(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("pooled")
    with pytest.raises(InvalidInput, match="unicorns"):
        await set_tenant_limit(db, tenant.slug, "unicorns", 5, actor="test")
    limits = await set_tenant_limit(db, tenant.slug, "cameras", 3, actor="test")
    assert {(x.resource, x.limit) for x in limits if x.resource == "cameras"} == {("cameras", 3)}
    await set_tenant_limit(db, tenant.slug, "requests_per_second", 7, actor="test")
