"""HOG people detector on the shared person clip, against the hand labels (issue 6).

Run: ``.venv/bin/python -m bench.edge_hog``. One core (``cv2.setNumThreads(1)`` and CPU
affinity), native frame size (768x432; the detector works at 640 px wide). HOG runs once
per frame; its detections are replayed into one pipeline per labelled line, so both
lines of the clip see the same detections. Vehicles are out of scope (HOG finds people).
Clips: sample videos by Intel IoT Developer Kit, CC BY 4.0.
"""

from __future__ import annotations

import time

import cv2

from camcount.edge.capture import Capture
from camcount.edge.detectors import Detection, Image, make_detector
from camcount.edge.labels import CLIPS_DIR_DEFAULT, load_labels, match
from camcount.edge.pipeline import PipelineConfig, count_file

from .edge_bench import pin_one_core


class Replay:
    """A detector that answers frame i with the detections recorded for frame i."""

    def __init__(self, detections: list[list[Detection]]) -> None:
        self.detections = detections
        self.index = 0

    def detect(self, image: Image) -> list[Detection]:
        found = self.detections[self.index]
        self.index += 1
        return found


def record(clip: str) -> tuple[list[list[Detection]], float]:
    """HOG on every frame of the clip; returns the detections and the detector's fps."""
    detector = make_detector("hog")
    capture = Capture(str(CLIPS_DIR_DEFAULT / clip), start_time=0.0)
    detections: list[list[Detection]] = []
    spent = 0.0
    for frame in capture.frames():
        started = time.perf_counter()
        detections.append(detector.detect(frame.image))
        spent += time.perf_counter() - started
    return detections, len(detections) / spent


def main() -> None:
    print(f"# HOG on the person clip\n\nSetup: {pin_one_core()}; native size; OpenCV {cv2.__version__}.\n")
    clips, tolerance, attribution = load_labels()
    people = [c for c in clips if c.object_class == "person"]
    recorded = {name: record(name) for name in sorted({c.file for c in people})}
    for name, (detections, _) in recorded.items():
        found = sum(1 for d in detections if d)
        print(f"{name}: a person found in {found} of {len(detections)} frames\n")
    print("| clip / line | expected in/out | counted in/out | matched | extra | hog fps |")
    print("|---|---|---|---|---|---|")
    for clip in people:
        detections, fps = recorded[clip.file]
        config = PipelineConfig(line=clip.line, detector="hog", anchor=clip.anchor, object_class="person")
        report = count_file(CLIPS_DIR_DEFAULT / clip.file, config, detector=Replay(detections))
        result = match(clip.crossings, report.crossings, tolerance)
        expected = clip.expected()
        got = report.totals.get("person", {"in": 0, "out": 0})
        print(f"| {clip.file}: {clip.setup.split(':')[0]} | {expected['in']}/{expected['out']} | "
              f"{got.get('in', 0)}/{got.get('out', 0)} | {result.matched}/{len(clip.crossings)} | "
              f"{len(result.extra)} | {fps:.1f} |")  # fmt: skip
        print(f"  missed {result.missed}; extra {result.extra}")
    print(f"\n{attribution}")


if __name__ == "__main__":
    main()
