"""Preview: an annotated frame so a user can check where the line sits.

Draws the counting line, an arrow pointing to the "in" side, the zones, every tracked
box with its id and anchor point, and the running totals.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from camcount.edge.count import Anchor, Direction, Line, Zone, anchor_point
from camcount.edge.detectors import Image
from camcount.edge.track import Track

_LINE = (0, 255, 255)
_IN = (0, 200, 0)
_TRACK = (255, 160, 0)
_TENTATIVE = (128, 128, 128)


def annotate(
    image: Image,
    line: Line,
    *,
    tracks: Sequence[Track] = (),
    totals: Counter[tuple[str, Direction]] | None = None,
    zones: tuple[Zone, ...] = (),
    occupancy: dict[str, int] | None = None,
    anchor: Anchor = Anchor.BOTTOM_CENTER,
) -> Image:
    canvas = image.copy()
    p1, p2 = (round(line.x1), round(line.y1)), (round(line.x2), round(line.y2))
    cv2.line(canvas, p1, p2, _LINE, 2, cv2.LINE_AA)
    # The arrow starts at the middle of the line and points to the right-hand ("in") side.
    mx, my = (line.x1 + line.x2) / 2, (line.y1 + line.y2) / 2
    nx, ny = -(line.y2 - line.y1) / line.length, (line.x2 - line.x1) / line.length
    tip = (round(mx + 30 * nx), round(my + 30 * ny))
    cv2.arrowedLine(canvas, (round(mx), round(my)), tip, _IN, 2, cv2.LINE_AA, tipLength=0.35)
    cv2.putText(canvas, "in", (tip[0] + 4, tip[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, _IN, 1, cv2.LINE_AA)
    for zone in zones:
        pts = np.array([[round(x), round(y)] for x, y in zone.points], dtype=np.int32)
        cv2.polylines(canvas, [pts], True, (255, 0, 255), 1, cv2.LINE_AA)
        label = f"{zone.name}: {(occupancy or {}).get(zone.name, 0)}"
        cv2.putText(
            canvas, label, tuple(pts[0]), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 0, 255), 1, cv2.LINE_AA
        )
    for track in tracks:
        x1, y1, x2, y2 = (round(v) for v in track.box)
        color = _TRACK if track.confirmed else _TENTATIVE
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 1)
        ax, ay = anchor_point(track.box, anchor)
        cv2.circle(canvas, (round(ax), round(ay)), 3, color, -1)
        cv2.putText(
            canvas, str(track.track_id), (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1
        )
    totals = totals if totals is not None else Counter()
    classes = sorted({c for c, _ in totals})
    lines = [f"{c} in {totals[(c, Direction.IN)]} out {totals[(c, Direction.OUT)]}" for c in classes]
    lines = lines or ["in 0 out 0"]
    for i, text in enumerate(lines):
        y = 18 + 18 * i
        cv2.putText(canvas, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def write_image(path: str | Path, image: Image) -> None:
    """Write atomically (temp file + rename) so a viewer never sees half a JPEG."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    if not cv2.imwrite(str(tmp), image):
        raise OSError(f"cannot write preview {path} (unknown image extension?)")
    os.replace(tmp, path)
