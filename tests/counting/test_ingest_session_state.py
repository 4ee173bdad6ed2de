"""Ingestion leaves no session state, and the one-pass body parser.

A batch travels as arrays in one statement: nothing temporary is created, so a pooled connection
carries nothing to the next request, and the application role may not create temporary tables at
all. The Rust-side body parser must accept only what the per-event checks accept, with the same
values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg import AsyncConnection, errors, sql

from camcount.counting.ingest import (
    AllAccepted,
    CountEvent,
    EventColumns,
    EventResult,
    Outcome,
    answer_json,
    as_row,
    ingest_events,
    parse_batch_json,
    parse_event,
    summarise,
    tally,
)
from camcount.db.pools import Database
from camcount.db.scope import set_tenant_context
from camcount.tenancy.bootstrap import regrant_tenant_databases
from camcount.tenancy.models import Tenant
from tests.counting.helpers import event, fetch, make_camera, make_site
from tests.fixtures.tenants import TenantFactory

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

_TEMP_RELATIONS = "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()"


async def _temp_relations(conn: AsyncConnection) -> int:
    cur = await conn.execute(_TEMP_RELATIONS)
    row = await cur.fetchone()
    await conn.rollback()  # end the implicit transaction of this read
    assert row is not None
    return int(row[0])


async def _ingest_on(
    conn: AsyncConnection, tenant: Tenant, batches: list[list[CountEvent]], *, fail: bool = False
) -> list[list[Outcome]]:
    """Ingest ``batches`` in one tenant transaction on this very connection (rolled back if ``fail``)."""
    statuses: list[list[Outcome]] = []
    try:
        async with conn.transaction():
            await set_tenant_context(conn, tenant.location)
            for batch in batches:
                results = await ingest_events(conn, tenant.id, batch, now=NOW)
                statuses.append([r.status for r in results])
            if fail:
                raise RuntimeError("roll back")
    except RuntimeError:
        assert fail
    return statuses


async def test_ingestion_leaves_nothing_on_the_pooled_connection(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    camera = await make_camera(db, tenant, await make_site(db, tenant))
    first = [event(camera, f"s{i}", NOW - timedelta(minutes=i)) for i in range(30)]
    second = [event(camera, f"s{i}", NOW - timedelta(minutes=i)) for i in range(20, 40)]
    pool = await db.app_pool(tenant.location.server, tenant.location.database_name)

    async with pool.connection() as conn:
        before = await _temp_relations(conn)
        # Two batches in one transaction.
        statuses = await _ingest_on(conn, tenant, [first, second])
        assert statuses == [[Outcome.ACCEPTED] * 30, [Outcome.DUPLICATE] * 10 + [Outcome.ACCEPTED] * 10]
        assert await _temp_relations(conn) == before
        # A transaction that fails after ingesting leaves nothing either, and stores nothing.
        await _ingest_on(conn, tenant, [[event(camera, "gone", NOW)]], fail=True)
        assert await _temp_relations(conn) == before

    assert await fetch(db, tenant, "SELECT count(*) FROM counting_results") == [(40,)]
    assert await fetch(db, tenant, "SELECT sum(total) FROM counting_rollups") == [(40,)]


async def test_the_application_role_may_not_create_temporary_tables(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    await _assert_app_role_has_no_temporary(db, tenant)


async def test_init_takes_temporary_back_from_databases_granted_it_before(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant("database")
    name, app_role = tenant.location.database_name, db.settings.app_role
    async with db.owner() as conn:  # as an earlier version granted it
        await conn.execute(
            sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(name), sql.Identifier(app_role)
            )
        )
    assert await regrant_tenant_databases(db) >= 1
    await _assert_app_role_has_no_temporary(db, tenant)


async def _assert_app_role_has_no_temporary(db: Database, tenant: Tenant) -> None:
    pool = await db.app_pool(tenant.location.server, tenant.location.database_name)
    async with pool.connection() as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            await conn.execute("CREATE TEMPORARY TABLE scratch (x int)")
        await conn.rollback()


async def test_a_batch_of_only_unknown_cameras_leaves_nothing(
    db: Database, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    pool = await db.app_pool(tenant.location.server, tenant.location.database_name)
    async with pool.connection() as conn:
        before = await _temp_relations(conn)
        statuses = await _ingest_on(conn, tenant, [[event(10**9, "x", NOW)], [event(10**9 + 1, "y", NOW)]])
        assert statuses == [[Outcome.REJECTED], [Outcome.REJECTED]]
        assert await _temp_relations(conn) == before


def _wire(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e-1",
        "camera_id": 3,
        "count_type": "in",
        "count_value": 4,
        "confidence": 0.5,
        "occurred_at": "2024-06-01T10:00:00+05:45",
        "object_class": "person",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _MISSING}


_MISSING: Any = object()

_EDGE_CASES: list[dict[str, Any]] = [
    _wire(),
    _wire(confidence=1),
    _wire(confidence=0),
    _wire(confidence=None),
    _wire(confidence=_MISSING, object_class=_MISSING),
    _wire(object_class=None),
    _wire(object_class=""),
    _wire(occurred_at="2024-06-01T10:00:00Z"),
    _wire(occurred_at="2024-06-01T10:00:00.123456-09:30"),
    _wire(occurred_at="2024-06-01 10:00:00+00:00"),
    _wire(occurred_at="20240601T100000+0200"),
    _wire(extra="ignored"),
    _wire(event_id="x" * 128),
    _wire(event_id="é✓ unicode ok"),
    _wire(camera_id=2**63 - 1),
    # Each of these is rejected by parse_event; the fast parser must decline the whole body.
    _wire(occurred_at="2024-06-01T10:00:00"),
    _wire(occurred_at="yesterday"),
    _wire(occurred_at="2024-06-01T10:00:00.1234567890123456789+00:00"),
    _wire(occurred_at=1717236000),
    _wire(event_id=""),
    _wire(event_id="x" * 129),
    _wire(event_id="tab\there"),
    _wire(event_id="nul\u0000"),
    _wire(event_id="line\u2028sep"),
    _wire(event_id=7),
    _wire(camera_id=0),
    _wire(camera_id=2**63),
    _wire(camera_id=True),
    _wire(camera_id=3.0),
    _wire(camera_id="3"),
    _wire(count_type="IN"),
    _wire(count_type="in\n"),
    _wire(count_type="x" * 33),
    _wire(count_type="in'; DROP TABLE sites; --"),
    _wire(count_value=-1),
    _wire(count_value=1_000_001),
    _wire(count_value=False),
    _wire(count_value=1.0),
    _wire(confidence=1.5),
    _wire(confidence=-0.1),
    _wire(confidence=True),
    _wire(confidence="0.5"),
    _wire(object_class="Person"),
    _wire(object_class="person\n"),
    _wire(object_class=3),
    _wire(count_type=_MISSING),
]


@pytest.mark.parametrize("raw", _EDGE_CASES, ids=lambda raw: json.dumps(raw, ensure_ascii=True)[:80])
def test_the_fast_parser_accepts_exactly_what_the_per_event_checks_accept(raw: dict[str, Any]) -> None:
    body = json.dumps({"events": [_wire(event_id="ok"), raw]}).encode()
    expected = [as_row(parse_event(item)) for item in json.loads(body)["events"]]
    fast = parse_batch_json(body)
    if any(not isinstance(item, tuple) for item in expected):
        assert fast is None
    else:
        assert fast is not None
        assert fast.rows() == expected
        row = expected[1]
        assert isinstance(row, tuple)
        assert [type(v) for v in fast.rows()[1]] == [type(v) for v in row]  # e.g. confidence 1 -> 1.0 in both


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"events": 3}',
        b'{"events": [1, 2]}',
        b'{"events": [{"event_id": "\\ud800", "camera_id": 1}]}',
        "\u00ff".encode("latin-1"),
        b'\xef\xbb\xbf{"events": []}',
        b'{"events": []} trailing',
        b'{"events": [{"event_id": "a", "camera_id": 1, "count_type": "in", "count_value": 1, '
        b'"occurred_at": "2024-06-01T10:00:00Z", "confidence": NaN}]}',
    ],
)
def test_bodies_the_fast_parser_declines(body: bytes) -> None:
    assert parse_batch_json(body) is None


def test_the_fast_parser_takes_the_last_of_repeated_keys_like_json_loads() -> None:
    body = (
        b'{"events": [{"event_id": "a", "camera_id": 1, "camera_id": 2, "count_type": "in", '
        b'"count_value": 1, "occurred_at": "2024-06-01T10:00:00Z"}], "events": []}'
    )
    empty = parse_batch_json(body)
    assert empty is not None
    assert empty.rows() == []
    body = body.replace(b', "events": []', b"")
    batch = parse_batch_json(body)
    assert batch is not None
    assert batch.camera_id == [2] == [json.loads(body)["events"][0]["camera_id"]]


def test_the_serialised_answer_equals_the_summary() -> None:
    results = [
        EventResult("a", 1, Outcome.ACCEPTED),
        EventResult("b", 2, Outcome.DUPLICATE, "already received"),
        EventResult(None, None, Outcome.REJECTED, "event must be an object"),
        EventResult('é"\\', 3, Outcome.REJECTED, "unknown camera_id"),
    ]
    assert json.loads(answer_json(results)) == summarise(results)


def test_an_all_accepted_batch_answers_as_its_list_of_results_would() -> None:
    batch = EventColumns.of_rows(
        [(7, f"e{i}", "in", "", 1, None, datetime(2024, 6, 1, 10, i, tzinfo=UTC)) for i in range(3)]
    )
    lazy = AllAccepted(batch)
    listed = [EventResult(f"e{i}", 7, Outcome.ACCEPTED) for i in range(3)]

    assert len(lazy) == 3
    assert list(lazy) == listed
    assert lazy[1] == listed[1]
    assert lazy[-1] == listed[-1]
    assert lazy[1:] == listed[1:]
    assert tally(lazy) == tally(listed) == (3, 0, 0)
    assert answer_json(lazy) == answer_json(listed)
    assert answer_json(lazy, minimal=True) == answer_json(listed, minimal=True)
    assert json.loads(answer_json(lazy, minimal=True))["results"] == []
