"""A request's batch of events, as ``POST /events`` receives it: read once, stored one of two ways.

The usual body, every event well formed, becomes columns in one pass in C
(:func:`camcount.counting.ingest.parse_batch_json`) and is stored in one round trip
(:func:`camcount.counting.ingest.ingest_batch`). Any other body is checked event by event
(:func:`camcount.counting.ingest.parse_event`), so a bad event gets its reason and never sinks the
good ones, and goes through :func:`camcount.counting.ingest.ingest_rows`. :class:`Submission` hides
which of the two a request took from the route: both answer the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from camcount.counting.ingest import (
    MAX_BATCH_EVENTS,
    EventColumns,
    EventResult,
    EventRow,
    IngestScope,
    Rejected,
    as_row,
    count_new_events,
    ingest_batch,
    ingest_rows,
    parse_batch_json,
    parse_event,
)
from camcount.db.pools import Database
from camcount.db.scope import tenant_transaction
from camcount.errors import InvalidInput
from camcount.tenancy.models import TenantLocation


@dataclass(frozen=True)
class Submission:
    """The events of one request: well-formed ``columns``, or ``rows`` checked one by one."""

    size: int  # events sent, good or bad
    columns: EventColumns | None = None
    rows: Sequence[EventRow | Rejected] = ()

    @property
    def too_large(self) -> bool:
        return self.size > MAX_BATCH_EVENTS

    @property
    def storable(self) -> int:
        """How many events passed their own checks (what the events quota must allow)."""
        if self.columns is not None:
            return len(self.columns)
        return sum(not isinstance(row, Rejected) for row in self.rows)

    async def count_new(self, db: Database, location: TenantLocation) -> int:
        """How many of the storable events are not stored yet (a retry near the quota's limit)."""
        if self.columns is not None:
            cameras, event_ids = self.columns.camera_id, self.columns.event_id
        else:
            checked = [row for row in self.rows if not isinstance(row, Rejected)]
            cameras, event_ids = [row[0] for row in checked], [row[1] for row in checked]
        async with tenant_transaction(db, location) as conn:
            return await count_new_events(conn, location.tenant_id, cameras, event_ids)

    async def store(
        self, db: Database, location: TenantLocation, *, now: datetime, scope: IngestScope, oldest: datetime
    ) -> Sequence[EventResult]:
        """Store what may be stored; one result per event sent, in order (after the commit)."""
        if self.columns is not None:
            return await ingest_batch(db, location, self.columns, now=now, scope=scope, oldest=oldest)
        async with tenant_transaction(db, location) as conn:
            return await ingest_rows(conn, location.tenant_id, self.rows, now=now, scope=scope, oldest=oldest)


def read_submission(body: bytes) -> Submission:
    """The events of a request body; a body that is not ``{"events": [...]}`` is InvalidInput (422).

    A batch over :data:`MAX_BATCH_EVENTS` comes back unchecked, with only its size: the route
    answers 413 without looking at its events.
    """
    columns = parse_batch_json(body)  # the usual, well-formed batch: no object per event
    if columns is not None:
        return Submission(len(columns), columns=columns)
    events = _events(body)
    if len(events) > MAX_BATCH_EVENTS:
        return Submission(len(events))
    return Submission(len(events), rows=[as_row(parse_event(event)) for event in events])


def _events(body: bytes) -> list[Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body", "is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise InvalidInput("events", 'the body must be {"events": [...]}')
    events: list[Any] = data["events"]
    return events
