"""``POST /events`` (ingestion, for devices and users who may ingest) and ``GET /events`` (listing).

Ingestion reads the body itself instead of declaring a pydantic model: each event is checked on
its own so a bad event is rejected with its reason and never sinks the good ones
(:mod:`camcount.counting.submission`: a well-formed body is parsed into columns in one pass and
stored in one round trip, any other body event by event). The route sizes the batch (413), takes
it from the storage limit and the events quota, stores it, gives back what was not stored, and
answers after the transaction has committed: an acknowledged event is durable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from camcount.api.deps import Permission, TenantContext, get_db, require
from camcount.api.problems import problem_response
from camcount.api.responses import FastJSONResponse
from camcount.api.routes._keyset import MAX_CURSOR_LENGTH, decode_key, encode_key
from camcount.counting.aggregate_cache import counts_changed
from camcount.counting.ingest import MAX_BATCH_EVENTS, OLDEST_ACCEPTED, IngestScope, answer_json, tally
from camcount.counting.queries import MAX_EVENT_PAGE, Order, Scope, list_events
from camcount.counting.submission import read_submission
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.limits.quotas import QuotaExceeded
from camcount.limits.rate import admit_ingest, refund_ingest
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
    submission = read_submission(await request.body())
    if submission.too_large:
        return problem_response(
            413,
            f"a batch holds at most {MAX_BATCH_EVENTS} events, this one {submission.size}: split it",
            ctx.request_id,
            code="batch-too-large",
        )
    # Storage limit (507) and the monthly events quota (429 with Retry-After), before any write:
    # the whole batch must fit; what is not stored (duplicates of a retry) is given back after.
    now = datetime.now(UTC)
    location = ctx.tenant.location
    storable = submission.storable
    try:
        await admit_ingest(request, db, ctx.tenant, storable, now=now)
    except QuotaExceeded:
        # Near the limit: a retry of batches already stored must not be refused for its duplicates.
        fresh = await submission.count_new(db, location)
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
        results = await submission.store(db, location, now=now, scope=scope, oldest=oldest)
    except BaseException:
        refund_ingest(request, ctx.tenant, storable, now=now)  # nothing was stored
        raise
    outcomes = tally(results)
    accepted = outcomes[0]
    refund_ingest(request, ctx.tenant, storable - accepted, now=now)
    request.app.state.ingestion_counters.record(ctx.tenant.id, outcomes)  # written in the background
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
    return FastJSONResponse({"items": page.items, "next_cursor": encode_key(page.next_key)})
