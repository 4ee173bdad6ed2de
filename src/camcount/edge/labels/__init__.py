"""Hand-made ground truth for the shared sample clips, and matching counts against it.

``clips.json`` lists, per clip and counting line, the frame and direction of every
crossing, labelled by eye (method in ``docs/edge.md``). Sample videos by Intel IoT
Developer Kit, CC BY 4.0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camcount.edge.count import Anchor, Crossing, Line

LABELS_FILE = Path(__file__).with_name("clips.json")
CLIPS_DIR_DEFAULT = Path("/work/shared/data/clips")


@dataclass(frozen=True)
class LabelledClip:
    file: str
    setup: str
    line: Line
    anchor: Anchor
    object_class: str
    crossings: tuple[tuple[int, str], ...]  # (frame, direction)

    def expected(self) -> dict[str, int]:
        return {d: sum(1 for _, x in self.crossings if x == d) for d in ("in", "out")}


@dataclass(frozen=True)
class MatchResult:
    matched: int  # labelled crossings found by the counter within the tolerance
    missed: list[tuple[int, str]]
    extra: list[tuple[int, str]]  # counted crossings with no label near them


def load_labels(path: Path = LABELS_FILE) -> tuple[list[LabelledClip], int, str]:
    raw: dict[str, Any] = json.loads(path.read_text())
    clips = [
        LabelledClip(
            c["file"],
            c["setup"],
            Line(*c["line"]),
            Anchor(c["anchor"]),
            c["object_class"],
            tuple((int(x["frame"]), str(x["direction"])) for x in c["crossings"]),
        )
        for c in raw["clips"]
    ]
    return clips, int(raw["tolerance_frames"]), str(raw["attribution"])


def match(labels: tuple[tuple[int, str], ...], crossings: list[Crossing], tolerance: int) -> MatchResult:
    """Greedy one-to-one matching by direction and nearest frame."""
    counted = sorted((c.frame_index, str(c.direction)) for c in crossings)
    unused = list(counted)
    missed = []
    for frame, direction in sorted(labels):
        candidates = [c for c in unused if c[1] == direction and abs(c[0] - frame) <= tolerance]
        if candidates:
            unused.remove(min(candidates, key=lambda c: abs(c[0] - frame)))
        else:
            missed.append((frame, direction))
    return MatchResult(len(labels) - len(missed), missed, unused)
