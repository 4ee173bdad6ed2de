"""Counts as CSV, streamed page by page: what ``GET /counts.csv`` sends.

The columns are fixed per grouping, plus one ``count_<type>`` column for each count type present in
the range (found first, so the header is complete before the first row). Each page is read in its
own short transaction, so a slow download never holds a database connection for its whole length;
pages follow the same keyset as ``GET /counts``, so no row is skipped or repeated.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from typing import Any

from psycopg import AsyncConnection

from camcount.counting.queries import CountsQuery, GroupBy, Page, bucketed_counts, cameras_in_scope
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.tenancy.models import TenantLocation

EXPORT_PAGE = 5000

_KEY_HEADER = {GroupBy.CAMERA: "camera_id", GroupBy.SITE: "site_id", GroupBy.COUNT_TYPE: "count_type"}


async def count_types_in_range(conn: AsyncConnection, query: CountsQuery) -> list[str]:
    """The count types with rollups in the query's cameras and range (the CSV's type columns)."""
    places = await cameras_in_scope(conn, query.scope)
    if not places:
        return []
    cur = await conn.execute(
        "SELECT DISTINCT count_type FROM counting_rollups WHERE camera_id = ANY(%s) "
        "AND bucket_start >= %s AND bucket_start < %s ORDER BY 1",
        ([p.camera_id for p in places], query.scope.start, query.scope.end),
    )
    wanted = set(query.scope.count_types)
    return [str(r[0]) for r in await cur.fetchall() if not wanted or r[0] in wanted]


def header(group_by: GroupBy, count_types: Sequence[str]) -> list[str]:
    columns = ["bucket", "timezone", _KEY_HEADER[group_by], "total", "events", "avg_confidence"]
    if group_by is not GroupBy.COUNT_TYPE:
        columns += ["in", "out", "net", *(f"count_{t}" for t in count_types)]
    return columns


def row(item: dict[str, Any], group_by: GroupBy, count_types: Sequence[str]) -> list[Any]:
    values = [
        item["bucket"],
        item["timezone"],
        item[_KEY_HEADER[group_by]],
        item["total"],
        item["events"],
        "" if item["avg_confidence"] is None else item["avg_confidence"],
    ]
    if group_by is not GroupBy.COUNT_TYPE:
        values += [item["in"], item["out"], item["net"], *(item["counts"].get(t, 0) for t in count_types)]
    return values


def _lines(rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


async def first_page(db: Database, location: TenantLocation, query: CountsQuery) -> tuple[list[str], Page]:
    """Validate the query and read the type columns and first page, before any byte is sent."""
    async with tenant_transaction(db, location) as conn:
        types = await count_types_in_range(conn, query)
        page = await bucketed_counts(conn, query, limit=EXPORT_PAGE)
    return types, page


async def stream_csv(
    db: Database, location: TenantLocation, query: CountsQuery, types: list[str], first: Page
) -> AsyncIterator[str]:
    """The CSV text: header, then every page until the keyset runs out."""
    page = first
    yield _lines([header(query.group_by, types)])
    while True:
        if page.items:
            yield _lines([row(item, query.group_by, types) for item in page.items])
        if page.next_key is None:
            return
        async with tenant_transaction(db, location) as conn:
            page = await bucketed_counts(conn, query, after=page.next_key, limit=EXPORT_PAGE)
