"""``POST /events`` (ingestion, for devices and users who may ingest) and ``GET /events`` (listing).

Ingestion reads the body itself instead of declaring a pydantic model: each event is checked on
its own so a bad event is rejected with its reason and never sinks the good ones. The hot path
parses and checks a well-formed body in one pass in C into columns
(:func:`camcount.counting.ingest.parse_batch_json`) and checks and stores them without a Python
step per event, in one round trip (:func:`camcount.counting.ingest.ingest_batch`); any other body
takes the per-event path (:func:`camcount.counting.ingest.parse_event`), which gives the reasons
and the 422s. The answer is sent after the transaction has committed: an acknowledged
event is durable.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from camcount.api.deps import Permission, TenantContext, get_db, require
from camcount.api.problems import problem_response
from camcount.api.routes._keyset import MAX_CURSOR_LENGTH, decode_key, encode_key
from camcount.counting.aggregate_cache import counts_changed
from camcount.counting.ingest import (
    MAX_BATCH_EVENTS,
    OLDEST_ACCEPTED,
    EventRow,
    IngestScope,
    Rejected,
    answer_json,
    as_row,
    count_new_events,
    ingest_batch,
    ingest_rows,
    parse_batch_json,
    parse_event,
    tally,
)
from camcount.counting.queries import MAX_EVENT_PAGE, Order, Scope, list_events
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import InvalidInput
from camcount.limits.quotas import QuotaExceeded
from camcount.limits.rate import admit_ingest, refund_ingest
from camcount.monitoring.ingestion import record_ingestion_batch
from camcount.tenancy.retention import event_retention_days

router = APIRouter(tags=["events"])


class EventIn(BaseModel):
    """One count event as a device sends it (documentation: the route checks events one by one)."""

    event_id: str = Field(min_length=1, max_length=128, description="Unique per camera; retries reuse it.")
    camera_id: int = Field(ge=1)
    count_type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", examples=["in", "out", "occupancy"])
    count_value: int = Field(ge=0, le=1_000_000)
    confidence: float | None = Field(default=None, ge=0, le=1)
    occurred_at: datetime = Field(description="ISO 8601 with a UTC offset; at most 5 minutes ahead.")
    object_class: str | None = Field(default=None, pattern=r"^[a-z0-9_]{0,32}$")


class IngestBatch(BaseModel):
    events: list[EventIn] = Field(max_length=MAX_BATCH_EVENTS)


class EventResultOut(BaseModel):
    event_id: str | None
    camera_id: int | None
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None


class IngestAnswer(BaseModel):
    results: list[EventResultOut] = Field(
        description="One per event, in input order; with `Prefer: return=minimal`, only the events not accepted."
    )
    accepted: int
    duplicate: int
    rejected: int


class EventOut(BaseModel):
    id: str = Field(description='"<camera_id>:<event_id>"')
    camera_id: int
    event_id: str
    count_type: str
    object_class: str | None
    count_value: int
    confidence: float | None
    occurred_at: datetime
    received_at: datetime


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


def _batch(body: bytes) -> list[Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body", "is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise InvalidInput("events", 'the body must be {"events": [...]}')
    events: list[Any] = data["events"]
    return events


@router.post(
    "/events",
    response_model=IngestAnswer,
    summary="Send a batch of count events",
    description=(
        f"Up to {MAX_BATCH_EVENTS} events. Each comes back `accepted`, `duplicate` (already stored: "
        "idempotent by camera_id + event_id) or `rejected` with a reason, in input order. The answer "
        "is sent only after the events are committed. More events, or a larger body, get 413. "
        "With `Prefer: return=minimal` (RFC 7240) `results` lists only the events that were not "
        "accepted (duplicates and rejections, with their reasons): every other event was accepted; "
        "the answer then carries `Preference-Applied: return=minimal`."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": IngestBatch.model_json_schema(ref_template="#/$defs/{model}")}
            },
        }
    },
    responses={413: {"description": "Too many events or too large a body: split the batch."}},
)
async def post_events(
    request: Request,
    ctx: Annotated[TenantContext, Depends(require(Permission.INGEST))],
    db: Annotated[Database, Depends(get_db)],
    prefer: Annotated[
        str | None,
        Header(description="`return=minimal`: list only the events not accepted (RFC 7240)."),
    ] = None,
) -> Response:
    body = await request.body()
    batch = parse_batch_json(body)  # the usual, well-formed batch: columns, no object per event
    items: list[EventRow | Rejected] = []
    raw: list[Any] = []
    if batch is None:  # not a batch of well-formed events: 422 for a bad body, else event by event
        raw = _batch(body)
        if len(raw) <= MAX_BATCH_EVENTS:
            items = [as_row(parse_event(item)) for item in raw]
    size = len(raw) if batch is None else len(batch)
    if size > MAX_BATCH_EVENTS:
        return problem_response(
            413,
            f"a batch holds at most {MAX_BATCH_EVENTS} events, this one {size}: split it",
            ctx.request_id,
            code="batch-too-large",
        )
    # Storage limit (507) and the monthly events quota (429 with Retry-After), before any write:
    # the whole batch must fit; what is not stored (duplicates of a retry) is given back after.
    now = datetime.now(UTC)
    storable = len(batch) if batch is not None else sum(not isinstance(e, Rejected) for e in items)
    try:
        await admit_ingest(request, db, ctx.tenant, storable, now=now)
    except QuotaExceeded:
        # Near the limit: a retry of batches already stored must not be refused for its duplicates.
        keys = (batch.camera_id, batch.event_id) if batch is not None else _keys(items)
        async with tenant_transaction(db, ctx.tenant.location) as conn:
            fresh = await count_new_events(conn, ctx.tenant.id, *keys)
        if fresh >= storable:
            raise
        await admit_ingest(request, db, ctx.tenant, fresh, now=now)
        storable = fresh
    principal = ctx.principal
    scope = (
        IngestScope(site_id=principal.site_id, camera_id=principal.camera_id)
        if principal.kind == "device"
        else IngestScope()
    )
    retention_days = await event_retention_days(db, request.app.state.cache, ctx.tenant.id)
    oldest = now - timedelta(days=retention_days) if retention_days else OLDEST_ACCEPTED
    try:
        if batch is not None:
            results = await ingest_batch(db, ctx.tenant.location, batch, now=now, scope=scope, oldest=oldest)
        else:
            async with tenant_transaction(db, ctx.tenant.location) as conn:
                results = await ingest_rows(conn, ctx.tenant.id, items, now=now, scope=scope, oldest=oldest)
    except BaseException:
        refund_ingest(request, ctx.tenant, storable, now=now)  # nothing was stored
        raise
    outcomes = tally(results)
    accepted = outcomes[0]
    refund_ingest(request, ctx.tenant, storable - accepted, now=now)
    await record_ingestion_batch(db, ctx.tenant.id, outcomes)  # counters (camcount.monitoring)
    if accepted:
        await counts_changed(request.app.state.cache, ctx.tenant.id)  # cached /counts answers are stale
    # Committed: only now is the answer sent.
    minimal = _prefers_minimal(prefer)
    return Response(
        answer_json(results, outcomes, minimal=minimal),
        media_type="application/json",
        headers={"Preference-Applied": "return=minimal"} if minimal else None,
    )


def _prefers_minimal(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header (RFC 7240: comma-separated preferences, names case-insensitive)
    asks for ``return=minimal``."""
    if not prefer:
        return False
    for preference in prefer.split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() == "return" and value.strip().strip('"').lower() == "minimal":
            return True
    return False


def _keys(items: list[EventRow | Rejected]) -> tuple[list[int], list[str]]:
    """(camera ids, event ids) of the well-formed events."""
    rows = [item for item in items if not isinstance(item, Rejected)]
    return [r[0] for r in rows], [r[1] for r in rows]


@router.get("/events", response_model=EventPage, summary="List count events (keyset pages)")
async def get_events(
    ctx: Annotated[TenantContext, Depends(require(Permission.READ))],
    db: Annotated[Database, Depends(get_db)],
    camera_id: Annotated[list[int] | None, Query(description="Repeat for several cameras.")] = None,
    site_id: Annotated[list[int] | None, Query(description="Repeat for several sites.")] = None,
    count_type: Annotated[list[str] | None, Query()] = None,
    start: Annotated[
        datetime | None, Query(alias="from", description="Inclusive, ISO 8601 with offset.")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Exclusive, ISO 8601 with offset.")] = None,
    order: Order = Order.ASC,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENT_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
) -> Response:
    scope = Scope(
        camera_ids=camera_id or (), site_ids=site_id or (), count_types=count_type or (), start=start, end=end
    )
    after = decode_key(cursor, 3)
    async with tenant_transaction(db, ctx.tenant.location) as conn:
        page = await list_events(conn, scope, after=after, limit=limit, order=order)
    return JSONResponse({"items": page.items, "next_cursor": encode_key(page.next_key)})
