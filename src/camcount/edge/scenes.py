"""Synthetic test scenes with exact ground truth, rendered to MJPG ``.avi`` files.

Used by the tests and the benchmark. A scene is a static textured background with sensor
noise, optional global brightness changes (flicker, a light switched on), and
rectangular "objects" moving along piecewise-linear paths. Everything derives from a
fixed seed, so a scene renders identically on every run.

Ground truth comes from the paths, not from the counter: each key frame's anchor point is
on one side of the line or, within ``ON_LINE`` pixels, on it; an object counts once each
time its key frames change side across the segment. A turn-back whose furthest point is
on the line therefore counts nothing, exactly as a person would judge it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from camcount.edge.count import Anchor, Line, anchor_point
from camcount.edge.detectors import Box

ON_LINE = 6.0  # key frames this close to the line are "on it" for the ground truth

KeyFrame = tuple[int, float, float]  # frame index, box centre x, box centre y


@dataclass(frozen=True)
class Mover:
    size: tuple[int, int]  # width, height
    keyframes: tuple[KeyFrame, ...]
    color: tuple[int, int, int] = (40, 40, 200)

    def box_at(self, frame: int) -> Box | None:
        keys = self.keyframes
        if frame < keys[0][0] or frame > keys[-1][0]:
            return None
        for (f0, x0, y0), (f1, x1, y1) in itertools.pairwise(keys):
            if f0 <= frame <= f1:
                t = 0.0 if f1 == f0 else (frame - f0) / (f1 - f0)
                cx, cy = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                break
        else:
            _, cx, cy = keys[-1]
        w, h = self.size
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


@dataclass(frozen=True)
class Scene:
    name: str
    description: str
    line: Line
    movers: tuple[Mover, ...]
    frames: int = 200
    size: tuple[int, int] = (320, 180)
    fps: float = 25.0
    anchor: Anchor = Anchor.BOTTOM_CENTER
    object_class: str = "person"
    brightness: dict[int, float] = field(default_factory=dict)  # frame -> offset (grey levels)
    seed: int = 7

    def expected(self) -> dict[str, int]:
        totals = {"in": 0, "out": 0}
        for mover in self.movers:
            for direction in truth_crossings(self, mover):
                totals[direction] += 1
        return totals

    def brightness_at(self, frame: int) -> float:
        # Offsets persist until the next key: {40: 50, 41: 0} is a one-frame flash.
        offset = 0.0
        for start in sorted(self.brightness):
            if start <= frame:
                offset = self.brightness[start]
        return offset


def truth_crossings(scene: Scene, mover: Mover) -> list[str]:
    sides: list[tuple[int, tuple[float, float]]] = []
    for frame, _, _ in mover.keyframes:
        box = mover.box_at(frame)
        assert box is not None
        point = anchor_point(box, scene.anchor)
        distance = scene.line.signed_distance(point)
        if abs(distance) > ON_LINE:
            sides.append((1 if distance > 0 else -1, point))
    result = []
    for (side_a, pa), (side_b, pb) in itertools.pairwise(sides):
        if side_a != side_b and scene.line.path_crosses(pa, pb):
            result.append("in" if side_b > 0 else "out")
    return result


def render(scene: Scene, path: str | Path) -> Path:
    """Write the scene as an MJPG ``.avi`` (OpenCV here cannot encode H.264)."""
    path = Path(path)
    width, height = scene.size
    rng = np.random.default_rng(scene.seed)
    # Low-frequency texture: what a floor or a road looks like to background subtraction.
    texture = rng.normal(0, 1, (height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    background = 120 + 25 * np.asarray(cv2.resize(texture, (width, height), interpolation=cv2.INTER_CUBIC))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), scene.fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write {path}")
    try:
        for index in range(scene.frames):
            image = background + rng.normal(0, 2.5, background.shape).astype(np.float32)
            for mover in scene.movers:
                box = mover.box_at(index)
                if box is not None:
                    _draw_object(image, box, mover.color)
            image = image + np.float32(scene.brightness_at(index))
            writer.write(np.clip(image, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    return path


def _draw_object(image: np.ndarray, box: Box, color: tuple[int, int, int]) -> None:
    x1, y1, x2, y2 = (round(v) for v in box)
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), color, thickness=-1)
    # A darker band gives the object some inner structure, like clothing or a windscreen.
    band_y = y1 + (y2 - y1) // 3
    dark = tuple(c * 0.5 for c in color)
    cv2.rectangle(image, (x1 + 2, band_y), (x2 - 3, band_y + max(2, (y2 - y1) // 6)), dark, thickness=-1)


def _down(
    x: float, start: int, y0: float = 10.0, y1: float = 175.0, speed: float = 2.0
) -> tuple[KeyFrame, ...]:
    return ((start, x, y0), (start + round((y1 - y0) / speed), x, y1))


def _up(
    x: float, start: int, y0: float = 175.0, y1: float = 10.0, speed: float = 2.0
) -> tuple[KeyFrame, ...]:
    return ((start, x, y0), (start + round((y0 - y1) / speed), x, y1))


PERSON = (16, 36)
VEHICLE = (40, 24)


def standard_scenes() -> list[Scene]:
    """The scenes the tests and the benchmark count; each exercises one failure mode."""
    return [
        Scene(
            "both_ways",
            "three people walk down (in), two walk up (out), staggered; the line is slanted",
            Line(20, 80, 300, 100),
            (
                Mover(PERSON, _down(60, 10)),
                Mover(PERSON, _up(110, 20), (200, 60, 40)),
                Mover(PERSON, _down(160, 40, speed=3.0)),
                Mover(PERSON, _up(210, 60, speed=2.5), (200, 60, 40)),
                Mover(PERSON, _down(260, 80, speed=1.5)),
            ),
            frames=200,
        ),
        Scene(
            "turn_back",
            "one person walks to the line and back, one waits on the line and goes back, one crosses",
            Line(10, 90, 310, 90),
            (
                Mover(PERSON, ((10, 70, 30), (40, 70, 74), (70, 70, 30))),  # feet reach y=92: on the line
                Mover(PERSON, ((10, 160, 30), (40, 160, 73), (80, 160, 73), (110, 160, 25))),
                Mover(PERSON, _down(250, 30)),
            ),
            frames=160,
        ),
        Scene(
            "close_pass",
            "two people side by side 12 px apart cross together; two pass each other in opposite "
            "directions 10 px apart right on the line",
            Line(10, 90, 310, 90),
            (
                Mover(PERSON, _down(60, 10)),
                Mover(PERSON, _down(88, 10), (40, 160, 40)),
                Mover(PERSON, _down(200, 30), (200, 60, 40)),
                Mover(PERSON, _up(226, 30), (40, 160, 40)),
            ),
            frames=140,
        ),
        Scene(
            "stop_on_line",
            "a person walks down, stands on the line for 3 s, then carries on (one in)",
            Line(10, 90, 310, 90),
            (Mover(PERSON, ((10, 150, 10), (44, 150, 72), (119, 150, 72), (171, 150, 175))),),
            frames=190,
        ),
        Scene(
            "flicker",
            "three people cross while the light flashes twice and then switches to a brighter level",
            Line(10, 90, 310, 90),
            (
                Mover(PERSON, _down(60, 10)),
                Mover(PERSON, _up(160, 15), (200, 60, 40)),
                Mover(PERSON, _down(260, 100)),
            ),
            frames=200,
            brightness={38: 45.0, 40: 0.0, 55: -40.0, 58: 0.0, 130: 30.0},
        ),
        Scene(
            "exit_after_crossing",
            "vehicles (centre anchor) cross a line 15 px from the bottom edge and leave the frame at once",
            Line(10, 165, 310, 165),
            (
                Mover(VEHICLE, _down(80, 10, y0=10.0, y1=195.0, speed=5.0), (220, 220, 220)),
                Mover(VEHICLE, _down(200, 40, y0=10.0, y1=195.0, speed=6.0), (30, 30, 30)),
            ),
            frames=120,
            anchor=Anchor.CENTER,
            object_class="vehicle",
        ),
        Scene(
            "edge_line",
            "a line 8 px from the bottom edge: two people walk out through it, two walk in from outside",
            Line(10, 172, 310, 172),
            (
                Mover(PERSON, _down(70, 10, y1=215.0)),
                Mover(PERSON, _down(150, 30, y1=215.0, speed=3.0)),
                Mover(PERSON, _up(220, 20, y0=205.0, y1=40.0), (200, 60, 40)),
                Mover(PERSON, _up(280, 50, y0=205.0, y1=40.0, speed=2.5), (200, 60, 40)),
            ),
            frames=170,
        ),
    ]
