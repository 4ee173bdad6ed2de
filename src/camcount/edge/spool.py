"""Store and forward: a local SQLite spool (WAL) between counting and delivery.

Every crossing is written here the moment it happens (``observations``), before it is
aggregated, so a ``kill -9`` mid-interval loses nothing: on restart the interval's
earlier crossings are still in the spool and the interval's event, built when it closes,
includes them. Building the event, inserting it and deleting its observations happen in
one transaction. An event leaves the spool only when the server acknowledged it
(accepted or duplicate); rejected events stay, marked, with the server's reason.

``synchronous=FULL`` makes each commit durable against power loss, not only against a
process crash; commits are rare (one per crossing or batch) so the fsync is affordable.
Every thread opens its own :class:`Spool` (SQLite connections are per thread).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from camcount.edge.aggregate import CountEvent, Observation, build_events

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    key TEXT PRIMARY KEY,
    camera_id INTEGER NOT NULL,
    interval_seconds INTEGER NOT NULL,
    interval_start INTEGER NOT NULL,
    count_type TEXT NOT NULL,
    object_class TEXT NOT NULL,
    zone TEXT NOT NULL,
    value INTEGER NOT NULL,
    confidence REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    count_type TEXT NOT NULL,
    count_value INTEGER NOT NULL,
    confidence REAL NOT NULL,
    occurred_at TEXT NOT NULL,
    object_class TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'rejected')),
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    UNIQUE (camera_id, event_id)
);
CREATE INDEX IF NOT EXISTS events_pending ON events (status, seq);
"""


@dataclass(frozen=True, slots=True)
class SpoolStats:
    pending: int
    rejected: int
    open_observations: int
    full: bool


class SpoolFullError(RuntimeError):
    pass


class Spool:
    def __init__(self, path: str | Path, *, max_events: int = 200_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_events = max_events
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so each write is one
        # explicit transaction.
        self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self._warned_full = False

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _event_rows(self) -> int:
        (n,) = self.db.execute("SELECT count(*) FROM events").fetchone()
        return int(n)

    def record(self, camera_id: int, interval_seconds: int, observations: Iterable[Observation]) -> int:
        """Persist observations (idempotent by key). Returns how many were new.

        Raises :class:`SpoolFullError` when the spool holds ``max_events`` undelivered
        events: the server has been unreachable for a long time and we refuse new counts
        rather than silently dropping old, unacknowledged ones.
        """
        rows = [(camera_id, interval_seconds, *_observation_fields(o)) for o in observations]
        if not rows:
            return 0
        if self._event_rows() >= self.max_events:
            if not self._warned_full:
                log.error(
                    "spool %s is full (%d undelivered events); new counts are NOT being recorded "
                    "until delivery resumes", self.path, self.max_events,
                )  # fmt: skip
                self._warned_full = True
            raise SpoolFullError(f"spool full: {self.max_events} undelivered events")
        self._warned_full = False
        self.db.execute("BEGIN IMMEDIATE")
        try:
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO observations (camera_id, interval_seconds, key, interval_start, count_type,"
                " object_class, zone, value, confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            added = self.db.total_changes - before
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return added

    def close_intervals(self, now: float) -> int:
        """Turn observations of every interval that ended at or before ``now`` into events."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            rows = self.db.execute(
                "SELECT key, camera_id, interval_seconds, interval_start, count_type, object_class, zone,"
                " value, confidence FROM observations WHERE interval_start + interval_seconds <= ?",
                (now,),
            ).fetchall()
            groups: dict[tuple[int, int], list[Observation]] = defaultdict(list)
            for key, camera, seconds, start, ctype, oclass, zone, value, conf in rows:
                groups[(camera, seconds)].append(Observation(key, start, ctype, oclass, zone, value, conf))
            created = 0
            for (camera, seconds), group in groups.items():
                for event in build_events(camera, seconds, group):
                    cursor = self.db.execute(
                        "INSERT OR IGNORE INTO events (camera_id, event_id, count_type, count_value,"
                        " confidence, occurred_at, object_class, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (*_event_fields(event), time.time()),
                    )
                    created += cursor.rowcount
            self.db.executemany("DELETE FROM observations WHERE key = ?", [(r[0],) for r in rows])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return created

    def pending(self, limit: int) -> list[CountEvent]:
        rows = self.db.execute(
            "SELECT event_id, camera_id, count_type, count_value, confidence, occurred_at, object_class"
            " FROM events WHERE status = 'pending' ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [CountEvent(*row) for row in rows]

    def acknowledge(self, events: Iterable[CountEvent]) -> None:
        """The server holds these events (accepted or duplicate): they may leave the spool."""
        keys = [(e.camera_id, e.event_id) for e in events]
        with self._transaction():
            self.db.executemany("DELETE FROM events WHERE camera_id = ? AND event_id = ?", keys)

    def reject(self, rejected: Iterable[tuple[CountEvent, str]]) -> None:
        """Keep rejected events, marked with the reason, so an operator can inspect them."""
        rows = [(reason, e.camera_id, e.event_id) for e, reason in rejected]
        with self._transaction():
            self.db.executemany(
                "UPDATE events SET status = 'rejected', reason = ? WHERE camera_id = ? AND event_id = ?", rows
            )

    def note_attempt(self, events: Iterable[CountEvent]) -> None:
        keys = [(e.camera_id, e.event_id) for e in events]
        with self._transaction():
            self.db.executemany(
                "UPDATE events SET attempts = attempts + 1 WHERE camera_id = ? AND event_id = ?", keys
            )

    def rejected(self) -> list[tuple[CountEvent, str]]:
        rows = self.db.execute(
            "SELECT event_id, camera_id, count_type, count_value, confidence, occurred_at, object_class,"
            " reason FROM events WHERE status = 'rejected' ORDER BY seq"
        ).fetchall()
        return [(CountEvent(*row[:7]), row[7] or "") for row in rows]

    def stats(self) -> SpoolStats:
        counts = dict(self.db.execute("SELECT status, count(*) FROM events GROUP BY status").fetchall())
        (observations,) = self.db.execute("SELECT count(*) FROM observations").fetchone()
        pending, rejected = int(counts.get("pending", 0)), int(counts.get("rejected", 0))
        return SpoolStats(pending, rejected, int(observations), pending + rejected >= self.max_events)

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _observation_fields(o: Observation) -> tuple[object, ...]:
    return (o.key, o.interval_start, o.count_type, o.object_class, o.zone, o.value, o.confidence)


def _event_fields(e: CountEvent) -> tuple[object, ...]:
    return (e.camera_id, e.event_id, e.count_type, e.count_value, e.confidence, e.occurred_at, e.object_class)
