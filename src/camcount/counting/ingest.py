"""Idempotent ingestion of count events, with exact rollups maintained in the same statement.

One statement per batch: deduplicate by (camera, event_id) through ``counting_event_ids`` (a unique
key the partitioned table cannot hold), store only the new events, and add them to the 15-minute
rollups. A retried or concurrent duplicate inserts nothing and adds nothing: the second inserter
waits on the unique key until the first commits, then skips. Runs inside a tenant-scoped
transaction, so RLS confines every row to the tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from psycopg import AsyncConnection

MAX_FUTURE_SKEW = timedelta(minutes=5)

_INGEST = """
WITH input AS (
    SELECT DISTINCT ON (camera_id, event_id) *
    FROM unnest(%(camera_id)s::bigint[], %(event_id)s::text[], %(count_type)s::text[], %(object_class)s::text[],
                %(count_value)s::integer[], %(confidence)s::real[], %(occurred_at)s::timestamptz[])
         AS i (camera_id, event_id, count_type, object_class, count_value, confidence, occurred_at)
), fresh AS (
    INSERT INTO counting_event_ids (tenant_id, camera_id, event_id, occurred_at)
    SELECT %(tenant_id)s, camera_id, event_id, occurred_at FROM input
    ON CONFLICT DO NOTHING
    RETURNING camera_id, event_id
), stored AS (
    INSERT INTO counting_results (tenant_id, camera_id, event_id, count_type, object_class, count_value,
                                  confidence, occurred_at)
    SELECT %(tenant_id)s, i.camera_id, i.event_id, i.count_type, i.object_class, i.count_value, i.confidence,
           i.occurred_at
    FROM input i JOIN fresh f USING (camera_id, event_id)
    RETURNING camera_id, count_type, object_class, count_value, confidence, occurred_at
), rolled AS (
    INSERT INTO counting_rollups AS r (tenant_id, camera_id, count_type, object_class, bucket_start, total, events,
                                       confidence_sum)
    SELECT %(tenant_id)s, camera_id, count_type, object_class,
           date_bin('15 minutes', occurred_at, '2000-01-01 00:00:00+00'),
           sum(count_value), count(*), sum(coalesce(confidence, 0))
    FROM stored GROUP BY 2, 3, 4, 5
    ON CONFLICT (tenant_id, camera_id, bucket_start, count_type, object_class) DO UPDATE
    SET total = r.total + EXCLUDED.total, events = r.events + EXCLUDED.events,
        confidence_sum = r.confidence_sum + EXCLUDED.confidence_sum
)
SELECT camera_id, event_id FROM fresh
"""


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class CountEvent:
    event_id: str
    camera_id: int
    count_type: str
    count_value: int
    occurred_at: datetime  # timezone-aware
    confidence: float | None = None
    object_class: str = ""


@dataclass(frozen=True)
class EventResult:
    event_id: str
    camera_id: int
    status: Outcome
    reason: str | None = None


async def ingest_events(
    conn: AsyncConnection, tenant_id: int, events: Sequence[CountEvent], *, now: datetime
) -> list[EventResult]:
    """Store the batch; one result per input event, in input order. Field formats are the caller's job."""
    cameras = await _known_cameras(conn, {e.camera_id for e in events})
    results: list[EventResult | None] = [None] * len(events)
    candidates: dict[tuple[int, str], int] = {}
    for index, event in enumerate(events):
        key = (event.camera_id, event.event_id)
        if event.camera_id not in cameras:
            results[index] = EventResult(
                event.event_id, event.camera_id, Outcome.REJECTED, "unknown camera_id"
            )
        elif event.occurred_at > now + MAX_FUTURE_SKEW:
            results[index] = EventResult(
                event.event_id,
                event.camera_id,
                Outcome.REJECTED,
                "occurred_at is more than 5 minutes in the future",
            )
        elif key in candidates:
            results[index] = EventResult(
                event.event_id, event.camera_id, Outcome.DUPLICATE, "repeated in this batch"
            )
        else:
            candidates[key] = index
    stored = await _store(conn, tenant_id, [events[i] for i in candidates.values()]) if candidates else set()
    for key, index in candidates.items():
        status = Outcome.ACCEPTED if key in stored else Outcome.DUPLICATE
        results[index] = EventResult(key[1], key[0], status, None if key in stored else "already received")
    if stored:
        await conn.execute(
            "UPDATE cameras SET last_delivery_at = %s WHERE id = ANY(%s)",
            (now, sorted({c for c, _ in stored})),
        )
    return [r for r in results if r is not None]


async def _known_cameras(conn: AsyncConnection, camera_ids: set[int]) -> set[int]:
    if not camera_ids:
        return set()
    cur = await conn.execute("SELECT id FROM cameras WHERE id = ANY(%s)", (sorted(camera_ids),))
    return {row[0] for row in await cur.fetchall()}


async def _store(conn: AsyncConnection, tenant_id: int, events: list[CountEvent]) -> set[tuple[int, str]]:
    cur = await conn.execute(
        _INGEST,
        {
            "tenant_id": tenant_id,
            "camera_id": [e.camera_id for e in events],
            "event_id": [e.event_id for e in events],
            "count_type": [e.count_type for e in events],
            "object_class": [e.object_class for e in events],
            "count_value": [e.count_value for e in events],
            "confidence": [e.confidence for e in events],
            "occurred_at": [e.occurred_at for e in events],
        },
    )
    return {(camera_id, event_id) for camera_id, event_id in await cur.fetchall()}
