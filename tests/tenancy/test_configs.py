"""Typed configuration, and secrets that are ciphertext at rest and survive key rotation."""

from __future__ import annotations

import pytest

from camcount.db.pools import Database
from camcount.errors import ConfigurationError, InvalidInput, NotFound
from camcount.secretbox import SecretBox, generate_key
from camcount.tenancy import configs
from camcount.tenancy.configs import MASK
from camcount.tenancy.models import Tenant
from tests.fixtures.database import SECRET_KEY
from tests.fixtures.tenants import TenantFactory


async def test_values_are_typed_on_the_way_in_and_out(db: Database, tenant_a: Tenant) -> None:
    await configs.set_config(db, tenant_a.slug, "max_occupancy", "250", value_type="integer", actor="t")
    await configs.set_config(db, tenant_a.slug, "alerts.enabled", "yes", value_type="boolean", actor="t")
    await configs.set_config(db, tenant_a.slug, "layout", '{"floors": [1, 2]}', value_type="json", actor="t")
    assert (await configs.get_config(db, tenant_a.slug, "max_occupancy")).value == 250
    assert (await configs.get_config(db, tenant_a.slug, "alerts.enabled")).value is True
    assert (await configs.get_config(db, tenant_a.slug, "layout")).value == {"floors": [1, 2]}
    with pytest.raises(InvalidInput, match="not an integer"):
        await configs.set_config(db, tenant_a.slug, "max_occupancy", "lots", value_type="integer", actor="t")
    assert (await configs.get_config(db, tenant_a.slug, "max_occupancy")).value == 250
    await configs.unset_config(db, tenant_a.slug, "layout", actor="t")
    with pytest.raises(NotFound):
        await configs.get_config(db, tenant_a.slug, "layout")


async def test_a_secret_is_ciphertext_at_rest_masked_by_default_and_readable_with_the_key(
    db: Database, tenant_a: Tenant
) -> None:
    box = SecretBox([SECRET_KEY])
    await configs.set_config(
        db, tenant_a.slug, "webhook.token", "s3cr3t-value", secret=True, box=box, actor="t"
    )
    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT value, secret_ciphertext FROM control.tenant_configs WHERE tenant_id = %s AND key = 'webhook.token'",
            (tenant_a.id,),
        )
        value, ciphertext = await cur.fetchone() or (None, None)
        cur = await conn.execute(
            "SELECT count(*) FROM control.audit_log WHERE tenant_id = %s AND (before::text LIKE '%%s3cr3t%%' "
            "OR after::text LIKE '%%s3cr3t%%')",
            (tenant_a.id,),
        )
        leaked = await cur.fetchone()
    assert value is None
    assert ciphertext is not None and b"s3cr3t" not in bytes(ciphertext)
    assert leaked == (0,)
    assert (await configs.get_config(db, tenant_a.slug, "webhook.token")).value == MASK
    assert (
        await configs.get_config(db, tenant_a.slug, "webhook.token", reveal=True, box=box)
    ).value == "s3cr3t-value"


async def test_rotation_keeps_old_values_readable_and_moves_them_to_the_new_key(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("pooled")
    # Every stored secret is under the installation's key; rotation re-encrypts them all.
    old_key, new_key = SECRET_KEY, generate_key()
    await configs.set_config(db, tenant.slug, "api.password", "hunter2", secret=True, box=SecretBox([old_key]),
                             actor="t")  # fmt: skip
    rotating = SecretBox([new_key, old_key])
    assert (
        await configs.get_config(db, tenant.slug, "api.password", reveal=True, box=rotating)
    ).value == "hunter2"
    assert await configs.rotate_secrets(db, rotating) >= 1
    only_new = SecretBox([new_key])
    assert (
        await configs.get_config(db, tenant.slug, "api.password", reveal=True, box=only_new)
    ).value == "hunter2"
    with pytest.raises(ConfigurationError):
        await configs.get_config(db, tenant.slug, "api.password", reveal=True, box=SecretBox([old_key]))
    await configs.rotate_secrets(db, SecretBox([old_key, new_key]))  # back, for the other tests
