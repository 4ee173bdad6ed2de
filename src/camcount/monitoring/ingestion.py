"""Per-tenant ingestion counters: what the events route reports after each batch.

Two ways in:

- :class:`IngestionCounters` (one per API process; the events route calls :meth:`record` once per
  committed batch): counts the batch in the Prometheus counters at once and in an in-process tally
  that a background task writes to ``control.ingestion_counters`` (one row per tenant and hour, all
  in one statement) every ``FLUSH_SECONDS`` and once more at shutdown. No request waits for that
  control-plane write; a crash loses at most those seconds of *counters* (never events).
- :func:`record_ingestion_outcomes`: the same, written at once (tests, tools, batch imports).

A tenant deleted while its counts wait in a process is skipped, not an error: its rows would
break the foreign key, and with it the write of every other tenant's counts.

The hourly rows feed the ingestion error rate in tenant metrics and the ``ingestion_rejections``
health check.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from camcount.db.pools import Database
from camcount.db.unnest import unnest_params
from camcount.monitoring import metrics
from camcount.periodic import PeriodicFlush

FLUSH_SECONDS = 2.0

log = logging.getLogger(__name__)

# Rows in (tenant_id, hour) order: concurrent writers from several processes lock them alike.
_UPSERT = """
INSERT INTO control.ingestion_counters AS c (tenant_id, hour, accepted, duplicate, rejected)
SELECT n.tenant_id, date_trunc('hour', n.at, 'UTC'), n.accepted, n.duplicate, n.rejected
FROM unnest(%(tenant_ids)s::int8[], %(ats)s::timestamptz[], %(accepted)s::int8[], %(duplicate)s::int8[],
            %(rejected)s::int8[]) AS n (tenant_id, at, accepted, duplicate, rejected)
WHERE EXISTS (SELECT FROM control.tenants t WHERE t.id = n.tenant_id)
ORDER BY 1, 2
ON CONFLICT (tenant_id, hour) DO UPDATE
SET accepted = c.accepted + EXCLUDED.accepted, duplicate = c.duplicate + EXCLUDED.duplicate,
    rejected = c.rejected + EXCLUDED.rejected, updated_at = now()
"""

Counts = tuple[int, int, int]  # (accepted, duplicate, rejected)


def _hour(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def _write(db: Database, counts: dict[tuple[int, datetime], Counts]) -> None:
    rows = ((tenant_id, hour, *outcomes) for (tenant_id, hour), outcomes in sorted(counts.items()))
    params = unnest_params(rows, "tenant_ids", "ats", "accepted", "duplicate", "rejected")
    async with db.app_control() as conn:
        await conn.execute(_UPSERT, params)


class IngestionCounters(PeriodicFlush):
    """A process's tally of ingestion outcomes per tenant and hour, written in the background."""

    def __init__(self, db: Database, flush_seconds: float = FLUSH_SECONDS) -> None:
        super().__init__(db, flush_seconds)
        self._pending: dict[tuple[int, datetime], Counts] = {}

    def record(self, tenant_id: int, outcomes: Counts, *, now: datetime | None = None) -> None:
        """Count one committed batch's (accepted, duplicate, rejected)."""
        accepted, duplicate, rejected = outcomes
        metrics.record_ingestion(accepted, duplicate, rejected)
        if accepted + duplicate + rejected:
            self._add((tenant_id, _hour(now or datetime.now(UTC))), outcomes)

    def _add(self, key: tuple[int, datetime], outcomes: Counts) -> None:
        a, d, r = self._pending.get(key, (0, 0, 0))
        self._pending[key] = (a + outcomes[0], d + outcomes[1], r + outcomes[2])

    async def flush(self) -> int:
        """Write the tally now; returns the (tenant, hour) rows sent. A failure is logged and kept."""
        pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            await _write(self.db, pending)
        except Exception:
            log.warning("could not write ingestion counters; kept for the next flush", exc_info=True)
            for key, outcomes in pending.items():
                self._add(key, outcomes)
            return 0
        return len(pending)


async def record_ingestion_outcomes(
    db: Database, tenant_id: int, *, accepted: int, duplicate: int, rejected: int, now: datetime | None = None
) -> None:
    """Count outcomes for the tenant (control plane, written now) and for Prometheus."""
    metrics.record_ingestion(accepted, duplicate, rejected)
    if accepted + duplicate + rejected == 0:
        return
    await _write(db, {(tenant_id, _hour(now or datetime.now(UTC))): (accepted, duplicate, rejected)})
