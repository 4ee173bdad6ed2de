"""Registered database servers: the URL is stored encrypted, tenants can be placed there."""

from __future__ import annotations

import pytest

from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import Conflict, InvalidInput
from camcount.secretbox import SecretBox
from camcount.tenancy.models import Placement
from camcount.tenancy.provisioning import TenantRequest, create_tenant
from camcount.tenancy.servers import add_server, list_servers
from tests.fixtures.database import SECRET_KEY
from tests.fixtures.tenants import unique_slug


async def test_a_tenant_database_on_a_registered_server(db: Database) -> None:
    box = SecretBox([SECRET_KEY])
    # The "other" server is this same cluster under another name: enough to exercise the path.
    url = db.default_server.owner_url
    name = f"s{unique_slug()[-8:]}"
    info = await add_server(db, name, url, box=box, actor="test")
    assert info.name == name and "password" not in info.host
    with pytest.raises(Conflict):
        await add_server(db, name, url, box=box, actor="test")

    async with db.owner() as conn:
        cur = await conn.execute(
            "SELECT url_ciphertext FROM control.database_servers WHERE name = %s", (name,)
        )
        row = await cur.fetchone()
        assert row is not None and url.encode() not in bytes(row[0])
        assert box.decrypt(bytes(row[0])) == url
        listed = {s.name: s for s in await list_servers(conn, db)}
    assert name in listed and not listed[name].is_default

    request = TenantRequest.parse(unique_slug(), name="Remote", placement="database", server=name)
    tenant = (await create_tenant(db, request, actor="test")).tenant
    assert (tenant.placement, tenant.server) == (Placement.DATABASE, name)
    async with tenant_transaction(db, tenant.location) as conn:
        await conn.execute("INSERT INTO sites (tenant_id, name) VALUES (%s, 'far away')", (tenant.id,))
        cur = await conn.execute("SELECT current_database(), count(*) FROM sites GROUP BY 1")
        assert await cur.fetchone() == (tenant.database_name, 1)


async def test_an_unknown_or_unreachable_server_is_refused(db: Database) -> None:
    box = SecretBox([SECRET_KEY])
    with pytest.raises(InvalidInput, match="server"):
        TenantRequest.parse("x-y-z", name="X", placement="database", server="Bad Name")
    request = TenantRequest.parse(unique_slug(), name="X", placement="database", server="nowhere")
    with pytest.raises(Exception, match="not registered"):
        await create_tenant(db, request, actor="test")
    with pytest.raises(InvalidInput, match="cannot connect"):
        await add_server(
            db, "unreachable", "postgresql://postgres@127.0.0.1:1/postgres", box=box, actor="test"
        )
