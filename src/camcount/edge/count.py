"""Counting: which side of a directed line an object is on, and when it has crossed.

Geometry. The line runs from ``(x1, y1)`` to ``(x2, y2)``. A point's side is the sign of
the cross product ``(p2 - p1) x (p - p1)``; in image coordinates (y down) a positive sign
is on the right-hand side of someone walking from p1 to p2. Crossing from the left side
to the right side is **in**, the other way **out**; the preview draws the arrow that way.

Rules (why each exists):

* A *dead band* of ``dead_band`` pixels either side of the line counts as "on the line":
  boxes jitter, and an object standing on the line must not count on every wobble.
* A side change must hold for ``min_frames_on_side`` consecutive observations beyond the
  dead band: a turn-back that pokes over the line for a frame does not count.
* The track must be confirmed and at least ``min_track_age`` frames old: brief false
  tracks (noise, a flash) never count.
* The move from the last position on the old side to the first on the new side must cut
  the *segment* (not its infinite extension): walking around the end of a line is no
  crossing.
* At most one count per track and direction: a tracker that briefly loses and refinds an
  object on the same track cannot count it twice.
* A track that ends while already beyond the dead band on the new side, but before
  ``min_frames_on_side`` observations, still counts: an object that leaves the frame just
  after crossing has no more frames to give.

A tracker ID switch can therefore lose a crossing but not double one in the same
direction: the new track starts on the side the object is already on.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from camcount.edge.detectors import Box

Point = tuple[float, float]


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class Anchor(StrEnum):
    """The point of a box that must cross: feet for people, centre for vehicles."""

    BOTTOM_CENTER = "bottom_center"
    CENTER = "center"


def anchor_point(box: Box, anchor: Anchor) -> Point:
    x1, y1, x2, y2 = box
    if anchor is Anchor.BOTTOM_CENTER:
        return ((x1 + x2) / 2, y2)
    return ((x1 + x2) / 2, (y1 + y2) / 2)


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        values = (self.x1, self.y1, self.x2, self.y2)
        if not all(math.isfinite(v) for v in values):
            raise ValueError("line coordinates must be finite numbers")
        if math.hypot(self.x2 - self.x1, self.y2 - self.y1) < 1.0:
            raise ValueError("the counting line needs two points at least one pixel apart")

    @classmethod
    def parse(cls, text: str) -> Line:
        """``"X1,Y1,X2,Y2"`` in frame pixels."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4:
            raise ValueError(f"line must be X1,Y1,X2,Y2, got {text!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"line coordinates must be numbers, got {text!r}") from None
        return cls(*values)

    @property
    def length(self) -> float:
        return float(((self.x2 - self.x1) ** 2 + (self.y2 - self.y1) ** 2) ** 0.5)

    def signed_distance(self, p: Point) -> float:
        """Distance from the line's infinite extension; positive on the right (in) side."""
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        return (dx * (p[1] - self.y1) - dy * (p[0] - self.x1)) / self.length

    def path_crosses(self, a: Point, b: Point) -> bool:
        """Whether the move from ``a`` to ``b`` cuts the segment (endpoints included)."""
        da, db = self.signed_distance(a), self.signed_distance(b)
        if da == db or ((da > 0) == (db > 0) and da != 0 and db != 0):
            return False
        t = da / (da - db)  # where along a->b the extension is met
        x, y = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        u = ((x - self.x1) * dx + (y - self.y1) * dy) / (dx * dx + dy * dy)
        return -1e-9 <= u <= 1 + 1e-9

    def scaled(self, factor: float) -> Line:
        return Line(self.x1 * factor, self.y1 * factor, self.x2 * factor, self.y2 * factor)


@dataclass(frozen=True, slots=True)
class CrossingRules:
    dead_band: float = 4.0
    min_frames_on_side: int = 2
    min_track_age: int = 4


class TrackLike(Protocol):
    @property
    def track_id(self) -> int: ...
    @property
    def age(self) -> int: ...
    @property
    def confirmed(self) -> bool: ...
    @property
    def label(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def box(self) -> Box: ...


@dataclass(frozen=True, slots=True)
class Crossing:
    track_id: int
    direction: Direction
    object_class: str
    frame_index: int
    timestamp: float
    confidence: float


@dataclass
class _SideState:
    side: int = 0  # established side: +1, -1, or 0 before the first observation off the line
    last_point: Point | None = None  # last position on the established side
    pending: int = 0  # the side being tried, 0 if none
    pending_frames: int = 0
    pending_point: Point | None = None
    counted: set[Direction] = field(default_factory=set)


class LineCounter:
    def __init__(
        self, line: Line, *, rules: CrossingRules | None = None, anchor: Anchor = Anchor.BOTTOM_CENTER
    ):
        self.line = line
        self.rules = rules or CrossingRules()
        self.anchor = anchor
        self.states: dict[int, _SideState] = {}
        self.totals: Counter[tuple[str, Direction]] = Counter()

    def observe(self, track: TrackLike, frame_index: int, timestamp: float) -> Crossing | None:
        """Feed one matched position of a track; returns a crossing when one completes."""
        state = self.states.setdefault(track.track_id, _SideState())
        point = anchor_point(track.box, self.anchor)
        distance = self.line.signed_distance(point)
        if abs(distance) <= self.rules.dead_band:
            return None  # on the line: neither confirms nor cancels a pending change
        side = 1 if distance > 0 else -1
        if state.side == 0 or side == state.side:
            state.side, state.last_point = side, point
            state.pending, state.pending_frames = 0, 0
            return None
        if state.pending != side:
            state.pending, state.pending_frames, state.pending_point = side, 0, point
        state.pending_frames += 1
        if state.pending_frames < self.rules.min_frames_on_side:
            return None
        return self._complete(track, state, frame_index, timestamp)

    def finish(self, track: TrackLike, frame_index: int, timestamp: float) -> Crossing | None:
        """A track ended: count a change already beyond the dead band, then forget it."""
        state = self.states.pop(track.track_id, None)
        if state is None or state.pending == 0:
            return None
        return self._complete(track, state, frame_index, timestamp)

    def _complete(
        self, track: TrackLike, state: _SideState, frame_index: int, timestamp: float
    ) -> Crossing | None:
        old_point, new_point = state.last_point, state.pending_point
        new_side = state.pending
        state.side, state.last_point = new_side, new_point
        state.pending, state.pending_frames = 0, 0
        if not track.confirmed or track.age < self.rules.min_track_age:
            return None
        if old_point is None or new_point is None or not self.line.path_crosses(old_point, new_point):
            return None
        direction = Direction.IN if new_side > 0 else Direction.OUT
        if direction in state.counted:
            return None
        state.counted.add(direction)
        self.totals[(track.label, direction)] += 1
        return Crossing(track.track_id, direction, track.label, frame_index, timestamp, track.confidence)


@dataclass(frozen=True, slots=True)
class Zone:
    """A polygon whose occupancy (objects whose anchor is inside) is sampled."""

    name: str
    points: tuple[Point, ...]

    def __post_init__(self) -> None:
        if len(self.points) < 3:
            raise ValueError(f"zone {self.name!r} needs at least 3 points")

    @classmethod
    def parse(cls, text: str) -> Zone:
        """``"name:x1,y1,x2,y2,x3,y3,..."``."""
        name, _, coords = text.partition(":")
        values = [float(v) for v in coords.split(",") if v.strip()]
        if not name or len(values) % 2 or len(values) < 6:
            raise ValueError(f"zone must be NAME:X1,Y1,X2,Y2,X3,Y3[,...], got {text!r}")
        return cls(name, tuple(zip(values[0::2], values[1::2], strict=True)))

    def contains(self, p: Point) -> bool:
        """Even-odd ray casting."""
        inside = False
        pts = self.points
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1], strict=True):
            if (ay > p[1]) != (by > p[1]):
                x_cross = ax + (p[1] - ay) * (bx - ax) / (by - ay)
                if p[0] < x_cross:
                    inside = not inside
        return inside

    def occupancy(self, tracks: list[TrackLike], anchor: Anchor) -> int:
        return sum(1 for t in tracks if t.confirmed and self.contains(anchor_point(t.box, anchor)))
