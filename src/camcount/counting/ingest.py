"""Idempotent ingestion of count events, with exact rollups maintained in the same statement.

The checked batch travels to the server as seven binary arrays, one per column, and one statement
unnests them, deduplicates by (camera, event_id) through ``counting_event_ids`` (a unique key the
partitioned table cannot hold), stores only the new events, adds them to the 15-minute rollups and
refreshes the cameras' ``last_delivery_at``. Nothing is staged: no temporary table, so no catalog
writes per batch and no session state a pooled connection could carry to the next request. A
retried or concurrent duplicate inserts nothing and adds nothing. The real tables are reached
through the transaction's ``search_path`` and RLS confines every row to the tenant.

Two statements, two paths (docs/counting.md, "Idempotency design"). The usual batch, all new and
well formed, goes in one round trip through ``_INGEST_NEW`` (:func:`ingest_batch`), which checks
the cameras itself and writes the ledger with a plain INSERT. Any other batch goes event by event
(:func:`ingest_rows`), each event checked on its own so a bad one is rejected with a reason and
never sinks the good ones, and ``_INGEST`` sorts new from stored with ON CONFLICT.

Concurrency: two batches that share events must take their row locks in one order, or they can
deadlock (A holds x and waits for y, B holds y and waits for x). Both statements write the ledger
in (camera_id, event_id) order (bytewise), then upsert rollup rows in key order, then lock the
cameras' rows in id order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import repeat
from operator import attrgetter
from typing import Annotated, Any, overload

import msgspec
from psycopg import AsyncConnection, errors

from camcount.db.binary_arrays import (
    float4_array,
    int4_array,
    int8_array,
    text_array,
    timestamptz_array,
)
from camcount.db.pools import Database
from camcount.db.scope import tenant_fetch, tenant_transaction
from camcount.tenancy.models import TenantLocation

MAX_BATCH_EVENTS = 5000
MAX_FUTURE_SKEW = timedelta(minutes=5)
# Nothing older is accepted: it is a broken clock, not a late delivery.
OLDEST_ACCEPTED = datetime(2000, 1, 1, tzinfo=UTC)
MAX_COUNT_VALUE = 1_000_000
MAX_EVENT_ID_LENGTH = 128
MAX_OCCURRED_AT_LENGTH = 40
_COUNT_TYPE_PATTERN = r"[a-z][a-z0-9_]{0,31}"
_OBJECT_CLASS_PATTERN = r"[a-z0-9_]{0,32}"
_COUNT_TYPE_RE = re.compile(_COUNT_TYPE_PATTERN)
_OBJECT_CLASS_RE = re.compile(_OBJECT_CLASS_PATTERN)

# One statement per batch. The checked events travel as seven binary arrays, one per column,
# unnested in the server: no staging table (whose CREATE and DROP wrote the catalog on every batch)
# and no COPY round trip. The ledger decides which events are new, only those are stored and added
# to the rollups, and their cameras' last_delivery_at is refreshed.
#
# Two batches that share events must take their row locks in one order, or they can deadlock. The
# order is: ledger keys in bytewise (camera_id, event_id) order, then rollup rows in key order, then
# camera rows in id order. Each step waits for the one before it through the data it reads (the
# count subqueries run once, before their statement's first row), so the order does not depend on
# how the planner schedules the CTEs, and it is the same in both statements below.
_BATCH = """
WITH batch AS (
    SELECT * FROM unnest(%(camera_id)b::int8[], %(event_id)b::text[], %(count_type)b::text[],
                         %(object_class)b::text[], %(count_value)b::int4[], %(confidence)b::float4[],
                         %(occurred_at)b::timestamptz[])
        AS b (camera_id, event_id, count_type, object_class, count_value, confidence, occurred_at)
)"""
_LEDGER_INSERT = (
    "\n    INSERT INTO counting_event_ids (tenant_id, camera_id, event_id, occurred_at)"
    "\n    SELECT %(tenant_id)b, camera_id, event_id, occurred_at FROM batch"
)
_LEDGER_ORDER = '\n    ORDER BY camera_id, event_id COLLATE "C"'
_STORE_AND_ROLL_UP = """, stored AS (
    INSERT INTO counting_results (tenant_id, camera_id, event_id, count_type, object_class, count_value,
                                  confidence, occurred_at)
    SELECT %(tenant_id)b, camera_id, event_id, count_type, object_class, count_value, confidence, occurred_at
    FROM new
    RETURNING camera_id, count_type, object_class, count_value, confidence, occurred_at
), rolled AS (
    INSERT INTO counting_rollups AS r (tenant_id, camera_id, count_type, object_class, bucket_start, total, events,
                                       confidence_sum)
    SELECT %(tenant_id)b, camera_id, count_type, object_class,
           date_bin('15 minutes', occurred_at, '2000-01-01 00:00:00+00') AS bucket_start,
           sum(count_value), count(*), sum(coalesce(confidence, 0))
    FROM stored GROUP BY 2, 3, 4, 5
    ORDER BY 2, 5, 3, 4
    ON CONFLICT (tenant_id, camera_id, bucket_start, count_type, object_class) DO UPDATE
    SET total = r.total + EXCLUDED.total, events = r.events + EXCLUDED.events,
        confidence_sum = r.confidence_sum + EXCLUDED.confidence_sum
    RETURNING 1
), touched AS (
    UPDATE cameras c SET last_delivery_at = %(now)b
    FROM (SELECT id FROM cameras
          WHERE id IN (SELECT camera_id FROM fresh)
            AND (last_delivery_at IS NULL OR last_delivery_at < %(stale)b)
            AND (SELECT count(*) FROM rolled) >= 0
          ORDER BY id FOR NO KEY UPDATE) locked
    WHERE c.id = locked.id AND (c.last_delivery_at IS NULL OR c.last_delivery_at < %(now)b)
)"""

# For any batch: the ledger's ON CONFLICT DO NOTHING tells the new events from those stored
# before; the statement returns the latter (the rest were accepted).
_INGEST = (
    _BATCH  # noqa: S608 (composed of this module's constant SQL only)
    + ", fresh AS ("
    + _LEDGER_INSERT
    + _LEDGER_ORDER
    + """
    ON CONFLICT DO NOTHING
    RETURNING camera_id, event_id
), new AS (
    SELECT b.* FROM batch b JOIN fresh f USING (camera_id, event_id)
)"""
    + _STORE_AND_ROLL_UP
    + """
SELECT b.camera_id, b.event_id FROM batch b
WHERE NOT EXISTS (SELECT FROM fresh f WHERE f.camera_id = b.camera_id AND f.event_id = b.event_id)
"""
)

# For the usual batch, whose events are all new and whose cameras all exist and are in the
# credential's scope: a plain INSERT into the ledger, whose unique key still refuses a stored event.
# ON CONFLICT's speculative insertion (probe the key, insert, confirm) cost about half the ledger's
# time, and the join back to what was new and the search for what was not are not needed. The
# statement checks the cameras itself (locking them against deletion, as ``_KNOWN_CAMERAS`` does)
# and writes nothing unless all pass, so the whole transaction can go in one round trip
# (:func:`ingest_batch`). It returns how many events it stored: all of them, or none when a camera
# did not pass. A stored event raises unique_violation; the batch then takes the careful path.
_INGEST_NEW = (
    _BATCH  # noqa: S608 (composed of this module's constant SQL only)
    + """, allowed AS (
    SELECT count(*) AS cameras FROM (
        SELECT id FROM cameras
        WHERE id = ANY(%(cameras)b)
          AND (%(scope_site)s::int8 IS NULL OR site_id = %(scope_site)s::int8)
          AND (%(scope_camera)s::int8 IS NULL OR id = %(scope_camera)s::int8)
        ORDER BY id FOR KEY SHARE
    ) c
), fresh AS ("""
    + _LEDGER_INSERT
    + "\n    WHERE (SELECT cameras FROM allowed) = %(camera_count)s"
    + _LEDGER_ORDER
    + """
    RETURNING camera_id
), new AS (
    SELECT * FROM batch WHERE (SELECT count(*) FROM fresh) > 0
)"""
    + _STORE_AND_ROLL_UP
    + """
SELECT count(*) FROM fresh
"""
)
_KNOWN_CAMERAS = "SELECT id, site_id FROM cameras WHERE id = ANY(%s) FOR KEY SHARE"

# How many distinct (camera_id, event_id) of a batch are not stored yet (read only; no locks).
_COUNT_NEW = """
SELECT count(*) FROM (SELECT DISTINCT camera_id, event_id
                      FROM unnest(%(camera_id)b::int8[], %(event_id)b::text[]) AS b (camera_id, event_id)) b
WHERE NOT EXISTS (SELECT FROM counting_event_ids e
                  WHERE e.tenant_id = %(tenant_id)b AND e.camera_id = b.camera_id AND e.event_id = b.event_id)
"""

# last_delivery_at is "last seen" to within LAST_DELIVERY_PRECISION: a camera row is locked and
# rewritten at most that often, so concurrent batches of one camera rarely queue on its row.
LAST_DELIVERY_PRECISION = timedelta(seconds=30)


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


# A checked event on the per-event path: (camera_id, event_id, count_type, object_class, count_value,
# confidence, occurred_at), the column order of the ingestion statement's arrays. The hot path
# keeps a well-formed batch in columns instead (EventColumns).
EventRow = tuple[int, str, str, str, int, float | None, datetime]


class EventResult(msgspec.Struct, frozen=True):
    """One event's outcome. A msgspec struct: a full answer builds and serialises one per event."""

    event_id: Any  # as sent (a rejected event may carry no valid id)
    camera_id: Any
    status: Outcome
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "camera_id": self.camera_id,
            "status": self.status.value,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class EventColumns:
    """A batch of checked events, one list per column (the ingestion statement's arrays)."""

    camera_id: list[int]
    event_id: list[str]
    count_type: list[str]
    object_class: list[str]
    count_value: list[int]
    confidence: list[float | None]
    occurred_at: list[datetime]

    def __len__(self) -> int:
        return len(self.event_id)

    def rows(self) -> list[EventRow]:
        return list(zip(self.camera_id, self.event_id, self.count_type, self.object_class, self.count_value,
                        self.confidence, self.occurred_at, strict=True))  # fmt: skip

    @classmethod
    def of_rows(cls, rows: Sequence[EventRow]) -> EventColumns:
        if not rows:
            return cls([], [], [], [], [], [], [])
        camera_id, event_id, count_type, object_class, count_value, confidence, occurred_at = map(
            list, zip(*rows, strict=True)
        )
        return cls(camera_id, event_id, count_type, object_class, count_value, confidence, occurred_at)


class AllAccepted(Sequence[EventResult]):
    """The outcomes of a batch whose every event was stored, made one by one only when read.

    The usual answer to a device (``Prefer: return=minimal``) reads none of them: building 1,000
    :class:`EventResult` structs and tallying them cost 0.12 ms per batch (measured alone; a few
    percent of the API process's CPU per batch), for an answer that lists no event.
    """

    __slots__ = ("_batch",)

    def __init__(self, batch: EventColumns) -> None:
        self._batch = batch

    def __len__(self) -> int:
        return len(self._batch)

    def __iter__(self) -> Iterator[EventResult]:
        return map(EventResult, self._batch.event_id, self._batch.camera_id, repeat(Outcome.ACCEPTED))

    @overload
    def __getitem__(self, index: int) -> EventResult: ...

    @overload
    def __getitem__(self, index: slice) -> list[EventResult]: ...

    def __getitem__(self, index: int | slice) -> EventResult | list[EventResult]:
        if isinstance(index, slice):
            return list(self)[index]
        return EventResult(self._batch.event_id[index], self._batch.camera_id[index], Outcome.ACCEPTED)


@dataclass(frozen=True)
class IngestScope:
    """What a credential may send for: a device key scoped to one site or one camera, or anything."""

    site_id: int | None = None
    camera_id: int | None = None

    def allows(self, camera_id: int, site_id: int) -> bool:
        if self.camera_id is not None and camera_id != self.camera_id:
            return False
        return self.site_id is None or site_id == self.site_id


UNRESTRICTED = IngestScope()


@dataclass(frozen=True)
class Rejected:
    """An event that failed its own checks, before any database work."""

    event_id: Any
    camera_id: Any
    reason: str


def _short(value: Any) -> Any:
    """Echo an identifier back only if it is small and of a plain type."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, str):
        return value if len(value) <= MAX_EVENT_ID_LENGTH else value[:MAX_EVENT_ID_LENGTH] + "…"
    return None


def _reject(raw: Mapping[str, Any], reason: str) -> Rejected:
    return Rejected(_short(raw.get("event_id")), _short(raw.get("camera_id")), reason)


def parse_event(raw: Any) -> CountEvent | Rejected:
    """Check one event as sent on the wire; the reason names the field and the rule."""
    if not isinstance(raw, Mapping):
        return Rejected(None, None, "event must be an object")
    event_id = raw.get("event_id")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_EVENT_ID_LENGTH:
        return _reject(raw, f"event_id must be a string of 1 to {MAX_EVENT_ID_LENGTH} characters")
    if not event_id.isprintable():
        return _reject(raw, "event_id must not contain control characters")
    camera_id = raw.get("camera_id")
    if isinstance(camera_id, bool) or not isinstance(camera_id, int) or not 1 <= camera_id < 2**63:
        return _reject(raw, "camera_id must be a positive integer")
    count_type = raw.get("count_type")
    if not isinstance(count_type, str) or not _COUNT_TYPE_RE.fullmatch(count_type):
        return _reject(raw, "count_type must match [a-z][a-z0-9_]{0,31} (for example in, out, occupancy)")
    count_value = raw.get("count_value")
    if isinstance(count_value, bool) or not isinstance(count_value, int):
        return _reject(raw, "count_value must be an integer")
    if not 0 <= count_value <= MAX_COUNT_VALUE:
        return _reject(raw, f"count_value must be between 0 and {MAX_COUNT_VALUE}")
    confidence = raw.get("confidence")
    if confidence is not None:
        if isinstance(confidence, bool) or not isinstance(confidence, int | float):
            return _reject(raw, "confidence must be a number between 0 and 1")
        confidence = float(confidence)
        if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
            return _reject(raw, "confidence must be a number between 0 and 1")
    object_class = raw.get("object_class")
    if object_class is None:
        object_class = ""
    elif not isinstance(object_class, str) or not _OBJECT_CLASS_RE.fullmatch(object_class):
        return _reject(raw, "object_class must match [a-z0-9_]{0,32}")
    occurred_raw = raw.get("occurred_at")
    if not isinstance(occurred_raw, str) or len(occurred_raw) > MAX_OCCURRED_AT_LENGTH:
        return _reject(raw, "occurred_at must be an ISO 8601 time with offset")
    try:
        occurred_at = datetime.fromisoformat(occurred_raw)
    except ValueError:
        return _reject(raw, "occurred_at must be an ISO 8601 time with offset")
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        return _reject(raw, "occurred_at must carry a UTC offset (for example 2024-05-01T10:00:00+02:00)")
    return CountEvent(event_id, camera_id, count_type, count_value, occurred_at, confidence, object_class)


def as_row(event: CountEvent | Rejected) -> EventRow | Rejected:
    """The row of a checked event (a rejected one passes through)."""
    if isinstance(event, Rejected):
        return event
    e = event
    return (e.camera_id, e.event_id, e.count_type, e.object_class, e.count_value, e.confidence, e.occurred_at)


# -- the whole body at once ---------------------------------------------------------------------
#
# The rules of parse_event, as far as a schema can say them, checked in C by msgspec while the JSON
# is parsed (strict: no bool for a number, no float for an integer, no number for a string; the last
# of repeated keys wins, as in json.loads). The rest is checked in parse_batch_json on whole columns:
# count_type and object_class against their patterns once per distinct value, event_id printable,
# occurred_at parsed by the same datetime.fromisoformat and carrying an offset. A body that passes
# is exactly a batch in which parse_event would accept every event, with the same values; anything
# else (malformed JSON, a bad event, an encoding json.loads would guess) is left to the per-event
# path, which gives the reasons and the 422s. tests/counting/test_ingest_session_state.py holds
# the edge cases.


# gc=False: a batch's 1,000 structs hold only strings and numbers, so they cannot be in a reference
# cycle; untracked, they no longer set off a young-generation collection per request.
class _WireEvent(msgspec.Struct, gc=False):
    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_ID_LENGTH)]
    camera_id: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
    count_type: str
    count_value: Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT_VALUE)]
    occurred_at: Annotated[str, msgspec.Meta(max_length=MAX_OCCURRED_AT_LENGTH)]
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    object_class: str | None = None


class _WireBatch(msgspec.Struct, gc=False):
    events: list[_WireEvent]


_WIRE_BATCH = msgspec.json.Decoder(_WireBatch)
_TZINFO = attrgetter("tzinfo")


def parse_batch_json(body: bytes) -> EventColumns | None:
    """The columns of a body in which every event is well formed, or None for anything else.

    One pass in C (msgspec) and a few whole-column checks instead of ``json.loads`` and
    :func:`parse_event` per event. None means "use the per-event path": it never changes an
    answer, only how fast it is found.
    """
    try:
        events = _WIRE_BATCH.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    event_ids = [e.event_id for e in events]
    count_types = [e.count_type for e in events]
    object_classes = [e.object_class or "" for e in events]
    if not all(map(_COUNT_TYPE_RE.fullmatch, set(count_types))):
        return None
    if not all(map(_OBJECT_CLASS_RE.fullmatch, set(object_classes))):
        return None
    if not "".join(event_ids).isprintable():
        return None
    try:
        times = list(map(datetime.fromisoformat, [e.occurred_at for e in events]))
    except ValueError:
        return None
    if None in map(_TZINFO, times):  # fromisoformat gives a fixed offset or none at all
        return None
    return EventColumns([e.camera_id for e in events], event_ids, count_types, object_classes,
                        [e.count_value for e in events], [e.confidence for e in events], times)  # fmt: skip


def tally(results: Sequence[EventResult]) -> tuple[int, int, int]:
    """(accepted, duplicate, rejected)."""
    if isinstance(results, AllAccepted):
        return len(results), 0, 0
    statuses = [r.status for r in results]
    return (
        statuses.count(Outcome.ACCEPTED),
        statuses.count(Outcome.DUPLICATE),
        statuses.count(Outcome.REJECTED),
    )


def summarise(results: Sequence[EventResult]) -> dict[str, Any]:
    """The answer to the edge worker: one result per event in input order, and the tallies."""
    accepted, duplicate, rejected = tally(results)
    return {
        "results": [r.to_json() for r in results],
        "accepted": accepted,
        "duplicate": duplicate,
        "rejected": rejected,
    }


_ANSWER = msgspec.json.Encoder()


def answer_json(
    results: Sequence[EventResult], counts: tuple[int, int, int] | None = None, *, minimal: bool = False
) -> bytes:
    """:func:`summarise` serialised in C; ``counts`` is :func:`tally` of ``results`` if known.

    ``minimal``: list only the events that were not accepted (the client asked for
    ``Prefer: return=minimal``; an event it does not find in the answer was accepted).
    """
    accepted, duplicate, rejected = counts or tally(results)
    if minimal:
        results = [r for r in results if r.status != Outcome.ACCEPTED] if accepted < len(results) else []
    elif not isinstance(results, list):
        results = list(results)  # msgspec encodes lists, not any sequence
    return _ANSWER.encode(
        {"results": results, "accepted": accepted, "duplicate": duplicate, "rejected": rejected}
    )


async def ingest_events(
    conn: AsyncConnection,
    tenant_id: int,
    events: Sequence[CountEvent | Rejected],
    *,
    now: datetime,
    scope: IngestScope = UNRESTRICTED,
    oldest: datetime = OLDEST_ACCEPTED,
) -> list[EventResult]:
    """Store the batch; one result per input event, in input order.

    ``events`` may hold :class:`Rejected` entries from :func:`parse_event`; they come back rejected
    with their reason. Cameras that do not exist in this tenant (including another tenant's) are
    "unknown" alike; cameras outside ``scope`` are rejected as such.
    """
    return await ingest_rows(
        conn, tenant_id, [as_row(e) for e in events], now=now, scope=scope, oldest=oldest
    )


async def ingest_batch(
    db: Database,
    location: TenantLocation,
    batch: EventColumns,
    *,
    now: datetime,
    scope: IngestScope = UNRESTRICTED,
    oldest: datetime = OLDEST_ACCEPTED,
) -> Sequence[EventResult]:
    """Store a well-formed batch given in columns (the HTTP hot path); one result per event, in order.

    The usual batch (every event new, its cameras known and in scope, its times in range, no key
    twice) is stored in one round trip: the tenant context and ``_INGEST_NEW`` in one pipeline, one
    transaction that its Sync commits, with no Python step per event. Any other batch leaves
    nothing behind there and goes event by event through :func:`ingest_rows` in a new
    transaction, which gives each its outcome.
    A key that comes twice in the batch is not looked for here: the ledger's unique key refuses the
    second one as it refuses a stored event.
    """
    if not batch:
        return []
    seen_before = False
    if _times_pass(batch, now=now, oldest=oldest):
        params = _statement_params(location.tenant_id, batch, now) | _camera_check(batch, scope)
        try:
            [(stored,)] = await tenant_fetch(db, location, _INGEST_NEW, params)
        except errors.UniqueViolation:
            seen_before = True  # some stored already (a retry, a concurrent batch), or a key twice
        else:
            if stored == len(batch):
                return AllAccepted(batch)
    async with tenant_transaction(db, location) as conn:
        return await ingest_rows(
            conn,
            location.tenant_id,
            batch.rows(),
            now=now,
            scope=scope,
            oldest=oldest,
            optimistic=not seen_before,
        )


def _times_pass(batch: EventColumns, *, now: datetime, oldest: datetime) -> bool:
    """Whether every event's time is in range."""
    earliest, latest = max(oldest, OLDEST_ACCEPTED), now + MAX_FUTURE_SKEW
    return min(batch.occurred_at) >= earliest and max(batch.occurred_at) <= latest


def _camera_check(batch: EventColumns, scope: IngestScope) -> dict[str, Any]:
    """``_INGEST_NEW``'s camera parameters: every distinct camera must exist and be in ``scope``."""
    cameras = sorted(set(batch.camera_id))
    return {
        "cameras": int8_array(cameras),
        "camera_count": len(cameras),
        "scope_site": scope.site_id,
        "scope_camera": scope.camera_id,
    }


def _statement_params(tenant_id: int, batch: EventColumns, now: datetime) -> dict[str, Any]:
    """The parameters of both ingestion statements: the batch as seven binary arrays, and the clock."""
    return {
        "camera_id": int8_array(batch.camera_id),
        "event_id": text_array(batch.event_id),
        "count_type": text_array(batch.count_type),
        "object_class": text_array(batch.object_class),
        "count_value": int4_array(batch.count_value),
        "confidence": float4_array(batch.confidence),
        "occurred_at": timestamptz_array(batch.occurred_at),
        "tenant_id": tenant_id,
        "now": now,
        "stale": now - LAST_DELIVERY_PRECISION,
    }


async def ingest_rows(
    conn: AsyncConnection,
    tenant_id: int,
    items: Sequence[EventRow | Rejected],
    *,
    now: datetime,
    scope: IngestScope = UNRESTRICTED,
    oldest: datetime = OLDEST_ACCEPTED,
    optimistic: bool = True,
) -> list[EventResult]:
    """:func:`ingest_events` for events already in row form.

    ``oldest``: events before it are refused (the tenant's retention boundary, see
    :mod:`camcount.tenancy.retention`). ``optimistic``: try the all-new statement first (False
    when some events are known to be stored already).
    """
    results: list[EventResult | None] = [None] * len(items)
    candidates: dict[tuple[int, str], int] = {}
    fresh_rows: list[EventRow] = []
    cameras = await _known_cameras(conn, {item[0] for item in items if not isinstance(item, Rejected)})
    latest = now + MAX_FUTURE_SKEW
    restricted = scope != UNRESTRICTED
    for index, item in enumerate(items):
        if isinstance(item, Rejected):
            results[index] = EventResult(item.event_id, item.camera_id, Outcome.REJECTED, item.reason)
            continue
        camera_id, event_id, occurred_at = item[0], item[1], item[6]
        site_id = cameras.get(camera_id)
        reason: str | None = None
        if site_id is None:
            reason = "unknown camera_id"
        elif restricted and not scope.allows(camera_id, site_id):
            reason = "camera_id is outside this device key's scope"
        elif occurred_at > latest:
            reason = "occurred_at is more than 5 minutes in the future"
        elif occurred_at < OLDEST_ACCEPTED:
            reason = "occurred_at is before 2000-01-01"
        elif occurred_at < oldest:
            reason = "occurred_at is older than this tenant's retention period"
        if reason is not None:
            results[index] = EventResult(event_id, camera_id, Outcome.REJECTED, reason)
        elif (key := (camera_id, event_id)) in candidates:
            results[index] = EventResult(event_id, camera_id, Outcome.DUPLICATE, "repeated in this batch")
        else:
            candidates[key] = index
            fresh_rows.append(item)
    if fresh_rows:
        already = await _store(conn, tenant_id, EventColumns.of_rows(fresh_rows), now, optimistic=optimistic)
        for key, index in candidates.items():
            if key in already:
                results[index] = EventResult(key[1], key[0], Outcome.DUPLICATE, "already received")
            else:
                results[index] = EventResult(key[1], key[0], Outcome.ACCEPTED)
    return [r for r in results if r is not None]


async def count_new_events(
    conn: AsyncConnection, tenant_id: int, camera_ids: list[int], event_ids: list[str]
) -> int:
    """How many of the batch's (camera_id, event_id) are not stored yet (an upper bound of what it adds).

    For a batch that does not fit in what is left of the events quota: a retry of a batch already
    stored adds nothing, so it need not be refused. Events can only become duplicates after this
    count (the ledger only grows), never new, so admitting this many cannot let the quota overshoot.
    """
    if not camera_ids:
        return 0
    params = {"camera_id": int8_array(camera_ids), "event_id": text_array(event_ids), "tenant_id": tenant_id}
    cur = await conn.execute(_COUNT_NEW, params)
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _known_cameras(conn: AsyncConnection, camera_ids: set[int]) -> dict[int, int]:
    """Camera id → site id for the tenant's cameras among ``camera_ids``, locked against deletion."""
    if not camera_ids:
        return {}
    cur = await conn.execute(_KNOWN_CAMERAS, (sorted(camera_ids),))
    return {int(row[0]): int(row[1]) for row in await cur.fetchall()}


async def _store(
    conn: AsyncConnection, tenant_id: int, batch: EventColumns, now: datetime, *, optimistic: bool
) -> set[tuple[int, str]]:
    """Run an ingestion statement over ``batch`` (checked: cameras known and locked, no key twice).

    Returns the (camera_id, event_id) of events that were already stored (by an earlier or a
    concurrent, committed batch).
    """
    if not batch:
        return set()
    params = _statement_params(tenant_id, batch, now)
    if optimistic:
        try:
            async with conn.transaction():  # a savepoint: the all-new statement may meet a stored event
                cur = await conn.execute(_INGEST_NEW, params | _camera_check(batch, UNRESTRICTED))
                row = await cur.fetchone()
            if row is not None and row[0] == len(batch):
                return set()
        except errors.UniqueViolation:
            pass  # some events were stored already: the careful statement tells which
    cur = await conn.execute(_INGEST, params)
    return {(int(camera_id), str(event_id)) for camera_id, event_id in await cur.fetchall()}
