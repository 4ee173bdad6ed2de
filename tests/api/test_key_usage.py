"""last_used_at of device keys and operator tokens: noted on each use, written now and then, never backwards."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from camcount.accounts import operators
from camcount.accounts.key_usage import KeyUsage, OperatorTokenUsage
from camcount.db.pools import Database
from tests.counting.helpers import fetch, make_camera, make_device_key, make_site
from tests.fixtures.api import ApiTenantFactory


async def test_a_used_device_key_shows_when_it_was_last_used(
    api: httpx.AsyncClient, api_app: FastAPI, db: Database, make_api_tenant: ApiTenantFactory
) -> None:
    owner = await make_api_tenant("schema")
    camera = await make_camera(db, owner.tenant, await make_site(db, owner.tenant))
    used = await make_device_key(db, owner.tenant, camera_id=camera)
    await make_device_key(db, owner.tenant, camera_id=camera)  # never used
    before = datetime.now(UTC)
    answer = await api.post(
        owner.url("/events"), json={"events": []}, headers={"Authorization": f"Bearer {used}"}
    )
    assert answer.status_code == 200, answer.text
    await api_app.state.key_usage.flush()  # the process would do this within a minute

    keys = (await api.get(owner.url("/keys"), headers=owner.headers)).json()["items"]
    seen = [k["last_used_at"] for k in keys]
    assert sorted(seen, key=lambda v: v is None)[1] is None  # the unused key: still never
    last = datetime.fromisoformat(next(v for v in seen if v is not None))
    assert before - timedelta(seconds=1) <= last <= datetime.now(UTC)


async def test_an_older_note_never_moves_last_used_at_back(
    db: Database, make_api_tenant: ApiTenantFactory
) -> None:
    owner = await make_api_tenant()
    camera = await make_camera(db, owner.tenant, await make_site(db, owner.tenant))
    await make_device_key(db, owner.tenant, camera_id=camera)
    (key_id,) = (await fetch(db, owner.tenant, "SELECT id FROM api_keys"))[0]
    usage = KeyUsage(db)
    usage.note(owner.tenant, key_id)  # noted now...
    later = datetime.now(UTC) + timedelta(hours=1)  # ...but another process already wrote a later use
    await fetch(db, owner.tenant, "UPDATE api_keys SET last_used_at = %s RETURNING id", later)
    assert await usage.flush() == 1
    assert await fetch(db, owner.tenant, "SELECT last_used_at FROM api_keys") == [(later,)]
    assert await usage.flush() == 0  # nothing left to write


async def test_a_used_operator_token_shows_when_it_was_last_used(
    api: httpx.AsyncClient, api_app: FastAPI, db: Database
) -> None:
    used, used_token = await operators.create_token(db, f"used-{uuid.uuid4().hex[:8]}", actor="test")
    idle, _ = await operators.create_token(db, f"idle-{uuid.uuid4().hex[:8]}", actor="test")
    before = datetime.now(UTC)
    for _ in range(2):  # the second use is answered from the verification cache: still noted
        answer = await api.get("/admin/tenants", headers={"Authorization": f"Bearer {used_token}"})
        assert answer.status_code == 200, answer.text
    await api_app.state.operators.usage.flush()  # the process would do this within a minute

    listed = {t.name: t for t in await operators.list_tokens(db)}
    assert listed[idle.name].last_used_at is None
    last = listed[used.name].last_used_at
    assert last is not None
    assert before - timedelta(seconds=1) <= last <= datetime.now(UTC)
    assert listed[used.name].as_dict()["last_used_at"] == last.isoformat()


async def test_an_older_operator_note_never_moves_last_used_at_back(db: Database) -> None:
    token, _ = await operators.create_token(db, f"op-{uuid.uuid4().hex[:8]}", actor="test")
    usage = OperatorTokenUsage(db)
    usage.note(token.prefix)
    later = datetime.now(UTC) + timedelta(hours=1)  # another process already wrote a later use
    async with db.owner() as conn:
        await conn.execute(
            "UPDATE control.operator_tokens SET last_used_at = %s WHERE prefix = %s", (later, token.prefix)
        )
    assert await usage.flush() == 1
    listed = {t.name: t for t in await operators.list_tokens(db)}
    assert listed[token.name].last_used_at == later
    assert await usage.flush() == 0
