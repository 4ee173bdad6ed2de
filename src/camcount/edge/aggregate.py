"""Aggregation: crossings and occupancy samples into per-interval count events.

One event per (camera, interval, count type, object class, zone). Its ``event_id`` is
built from exactly those parts, so the same interval always produces the same id: a
re-send after a lost acknowledgement, or a re-run of a file after a crash, is recognised
by the server as a duplicate instead of being counted again.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class Observation:
    """One row of raw evidence: a crossing (value 1) or an occupancy sample (value n)."""

    key: str  # unique per observation; re-recording the same observation is a no-op
    interval_start: int  # epoch seconds, a multiple of the interval
    count_type: str  # "in", "out" or "occupancy"
    object_class: str
    zone: str  # "" for line crossings
    value: int
    confidence: float


@dataclass(frozen=True, slots=True)
class CountEvent:
    event_id: str
    camera_id: int
    count_type: str
    count_value: int
    confidence: float
    occurred_at: str  # ISO 8601 with offset: the start of the interval
    object_class: str | None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "event_id": self.event_id,
            "camera_id": self.camera_id,
            "count_type": self.count_type,
            "count_value": self.count_value,
            "confidence": self.confidence,
            "occurred_at": self.occurred_at,
        }
        if self.object_class is not None:
            body["object_class"] = self.object_class
        return body


def interval_start(timestamp: float, interval_seconds: int) -> int:
    return math.floor(timestamp / interval_seconds) * interval_seconds


def make_event_id(
    camera_id: int, start: int, interval_seconds: int, count_type: str, object_class: str, zone: str = ""
) -> str:
    """Readable and deterministic, e.g. ``c7-20260101T120000Z-60s-in-person``; <= 128 chars."""
    stamp = datetime.fromtimestamp(start, UTC).strftime("%Y%m%dT%H%M%SZ")
    parts = [f"c{camera_id}", stamp, f"{interval_seconds}s", count_type, _UNSAFE.sub("_", object_class)[:24]]
    if zone:
        parts.append("z_" + _UNSAFE.sub("_", zone)[:24])
    return "-".join(parts)[:128]


def build_events(
    camera_id: int, interval_seconds: int, observations: Iterable[Observation]
) -> list[CountEvent]:
    """Crossings are summed; occupancy reports the peak of the samples in the interval.

    Confidence is the mean of the observations' confidences (track confidence for
    crossings), so one weak track among many strong ones lowers it only a little.
    """
    groups: dict[tuple[int, str, str, str], list[Observation]] = defaultdict(list)
    for obs in observations:
        groups[(obs.interval_start, obs.count_type, obs.object_class, obs.zone)].append(obs)
    events = []
    for (start, count_type, object_class, zone), group in sorted(groups.items()):
        values = [o.value for o in group]
        value = max(values) if count_type == "occupancy" else sum(values)
        confidence = sum(o.confidence for o in group) / len(group)
        events.append(
            CountEvent(
                event_id=make_event_id(camera_id, start, interval_seconds, count_type, object_class, zone),
                camera_id=camera_id,
                count_type=count_type,
                count_value=value,
                confidence=round(min(1.0, max(0.0, confidence)), 4),
                occurred_at=datetime.fromtimestamp(start, UTC).isoformat(),
                object_class=object_class or None,
            )
        )
    return events
