"""Per-tenant ingestion counters: what the events route reports after each batch.

Two ways in:

- :func:`record_ingestion_batch` (the events route, once per committed batch): counts the batch in
  the Prometheus counters at once and in an in-process tally that is written to
  ``control.ingestion_counters`` (one upsert per tenant and hour) at most every
  ``FLUSH_SECONDS``, by whichever request comes next, so the hot path does not pay a control-plane
  write per batch. A crash loses at most those seconds of *counters* (never events).
- :func:`record_ingestion_outcomes`: the same, written at once (tests, tools, batch imports).

The hourly rows feed the ingestion error rate in tenant metrics and the ``ingestion_rejections``
health check.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from camcount.db.pools import Database
from camcount.monitoring import metrics

FLUSH_SECONDS = 2.0

_UPSERT = """
INSERT INTO control.ingestion_counters AS c (tenant_id, hour, accepted, duplicate, rejected)
VALUES (%s, date_trunc('hour', %s::timestamptz, 'UTC'), %s, %s, %s)
ON CONFLICT (tenant_id, hour) DO UPDATE
SET accepted = c.accepted + EXCLUDED.accepted, duplicate = c.duplicate + EXCLUDED.duplicate,
    rejected = c.rejected + EXCLUDED.rejected, updated_at = now()
"""


def _hour(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class _Tally:
    def __init__(self) -> None:
        self.pending: dict[tuple[int, datetime], list[int]] = {}
        self.last_flush = time.monotonic()
        self.lock = asyncio.Lock()

    def add(self, tenant_id: int, hour: datetime, accepted: int, duplicate: int, rejected: int) -> None:
        counts = self.pending.setdefault((tenant_id, hour), [0, 0, 0])
        counts[0] += accepted
        counts[1] += duplicate
        counts[2] += rejected


_TALLY = _Tally()


async def _write(db: Database, rows: list[tuple[int, datetime, int, int, int]]) -> None:
    async with db.app_control() as conn, conn.cursor() as cur:
        await cur.executemany(_UPSERT, rows)


async def flush_ingestion_counters(db: Database) -> int:
    """Write the tally to the control plane now; returns the rows written. Safe to call any time."""
    async with _TALLY.lock:
        pending, _TALLY.pending = _TALLY.pending, {}
        _TALLY.last_flush = time.monotonic()
        rows: list[tuple[int, datetime, int, int, int]] = sorted(
            (tid, hour, counts[0], counts[1], counts[2]) for (tid, hour), counts in pending.items()
        )
        if not rows:
            return 0
        try:
            await _write(db, rows)
        except Exception:
            for tid, hour, a, d, r in rows:  # keep them for the next flush
                _TALLY.add(tid, hour, a, d, r)
            raise
        return len(rows)


async def record_ingestion_batch(
    db: Database, tenant_id: int, outcomes: tuple[int, int, int], *, now: datetime | None = None
) -> None:
    """Count one committed batch's (accepted, duplicate, rejected) (the events route, once per batch)."""
    accepted, duplicate, rejected = outcomes
    metrics.record_ingestion(accepted, duplicate, rejected)
    if accepted + duplicate + rejected == 0:
        return
    _TALLY.add(tenant_id, _hour(now or datetime.now(UTC)), accepted, duplicate, rejected)
    if time.monotonic() - _TALLY.last_flush >= FLUSH_SECONDS and not _TALLY.lock.locked():
        await flush_ingestion_counters(db)


async def record_ingestion_outcomes(
    db: Database, tenant_id: int, *, accepted: int, duplicate: int, rejected: int, now: datetime | None = None
) -> None:
    """Count outcomes for the tenant (control plane, written now) and for Prometheus."""
    metrics.record_ingestion(accepted, duplicate, rejected)
    if accepted + duplicate + rejected == 0:
        return
    await _write(db, [(tenant_id, _hour(now or datetime.now(UTC)), accepted, duplicate, rejected)])
