"""``GET /counts`` and ``GET /counts.csv``: time-bucketed counts from the rollups (never raw events).

Buckets are local to each camera's site (its IANA time zone) and labelled with their UTC offset, so
a fall-back night's two 01:00 hours stay apart; docs/counting.md has the details.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from camcount.api.deps import Permission, TenantContext, get_cache, get_db, require
from camcount.api.responses import FastJSONResponse
from camcount.api.routes._keyset import MAX_CURSOR_LENGTH, decode_key, encode_key
from camcount.cache import Cache
from camcount.counting.aggregate_cache import cached_answer
from camcount.counting.export import first_page, stream_csv
from camcount.counting.queries import (
    MAX_COUNT_PAGE,
    BucketUnit,
    CountsQuery,
    GroupBy,
    Scope,
    fetch_counts,
)
from camcount.db.pools import Database

router = APIRouter(tags=["counts"])

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
CountType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class CountOut(BaseModel):
    id: str = Field(description="<group>:<key>@<bucket>[<time zone>]")
    bucket: str = Field(description="Local start of the bucket, ISO 8601 with its UTC offset.")
    timezone: str
    camera_id: int | None = None
    site_id: int | None = None
    count_type: str | None = None
    counts: dict[str, int]
    total: int
    events: int
    avg_confidence: float | None
    in_: int | None = Field(default=None, alias="in")
    out: int | None = None
    net: int | None = Field(default=None, description="in - out")


class CountPage(BaseModel):
    items: list[CountOut]
    next_cursor: str | None


class CountParams:
    """The query parameters shared by /counts and /counts.csv."""

    def __init__(
        self,
        start: Annotated[
            datetime,
            Query(alias="from", description="Inclusive; ISO 8601 with offset, on a 15-minute boundary."),
        ],
        end: Annotated[
            datetime,
            Query(alias="to", description="Exclusive; ISO 8601 with offset, on a 15-minute boundary."),
        ],
        bucket: BucketUnit = BucketUnit.HOUR,
        group_by: GroupBy = GroupBy.CAMERA,
        business_hours: Annotated[
            bool, Query(description="Only the sites' business hours (local time).")
        ] = False,
        camera_id: Annotated[list[Id] | None, Query(description="Repeat for several cameras.")] = None,
        site_id: Annotated[list[Id] | None, Query(description="Repeat for several sites.")] = None,
        count_type: Annotated[list[CountType] | None, Query(description="Repeat for several types.")] = None,
    ) -> None:
        scope = Scope(
            camera_ids=camera_id or (),
            site_ids=site_id or (),
            count_types=count_type or (),
            start=start,
            end=end,
        )
        self.query = CountsQuery(scope, bucket=bucket, group_by=group_by, business_hours=business_hours)


@router.get("/counts", response_model=CountPage, summary="Counts per time bucket, camera, site or type")
async def get_counts(
    ctx: Annotated[TenantContext, Depends(require(Permission.READ))],
    db: Annotated[Database, Depends(get_db)],
    cache: Annotated[Cache, Depends(get_cache)],
    params: Annotated[CountParams, Depends()],
    limit: Annotated[int, Query(ge=1, le=MAX_COUNT_PAGE)] = 1000,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)] = None,
) -> Response:
    after = decode_key(cursor, 3)

    async def compute() -> dict[str, Any]:
        page = await fetch_counts(db, ctx.tenant.location, params.query, after=after, limit=limit)
        # The items are JSON values already (counting.queries), so a cached answer (in Redis: JSON
        # text) and a fresh one are the same; FastAPI's jsonable_encoder walking them again took
        # more time than the query (about 4,500 calls for a week of hours).
        return {"items": page.items, "next_cursor": encode_key(page.next_key)}

    request_key = repr((params.query, after, limit))
    return FastJSONResponse(await cached_answer(cache, ctx.tenant.id, request_key, compute))


@router.get(
    "/counts.csv",
    summary="The same counts as CSV, streamed (all pages)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_counts_csv(
    ctx: Annotated[TenantContext, Depends(require(Permission.READ))],
    db: Annotated[Database, Depends(get_db)],
    params: Annotated[CountParams, Depends()],
) -> StreamingResponse:
    # Errors (bad range, unknown camera) are raised here, before the 200 and the first byte.
    types, page = await first_page(db, ctx.tenant.location, params.query)
    filename = f"counts-{params.query.bucket.value}-{params.query.group_by.value}.csv"
    return StreamingResponse(
        stream_csv(db, ctx.tenant.location, params.query, types, page),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
