"""The counting pipeline: detect -> track -> count for one frame at a time.

:class:`CountingPipeline` is the pure per-frame core shared by ``camcount edge count``
(offline, :func:`count_file`) and ``camcount edge run`` (:mod:`camcount.edge.worker`).
It times every stage so the benchmark can report where a frame's budget goes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camcount.edge.capture import Capture, Frame
from camcount.edge.count import Anchor, Crossing, CrossingRules, Direction, Line, LineCounter, Zone
from camcount.edge.detectors import Detection, Detector, make_detector
from camcount.edge.track import SortTracker, Track

STAGES = ("capture", "detect", "track", "count")


@dataclass(frozen=True)
class PipelineConfig:
    line: Line
    detector: str = "motion"
    detector_options: dict[str, Any] = field(default_factory=dict)
    object_class: str = "person"  # label for detectors that do not classify (motion)
    anchor: Anchor = Anchor.BOTTOM_CENTER
    rules: CrossingRules = field(default_factory=CrossingRules)
    zones: tuple[Zone, ...] = ()
    max_age: int = 12
    min_hits: int = 3


@dataclass
class StageTimings:
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frames: int = 0

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def per_frame_ms(self) -> dict[str, float]:
        return {k: 1000.0 * v / max(self.frames, 1) for k, v in self.seconds.items()}

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


@dataclass
class FrameResult:
    frame: Frame
    detections: list[Detection]
    tracks: list[Track]  # tracks matched in this frame
    crossings: list[Crossing]
    occupancy: dict[str, int]


class CountingPipeline:
    def __init__(self, config: PipelineConfig, detector: Detector | None = None) -> None:
        self.config = config
        self.detector = detector or make_detector(
            config.detector, object_class=config.object_class, **config.detector_options
        )
        self.tracker = SortTracker(max_age=config.max_age, min_hits=config.min_hits)
        self.counter = LineCounter(config.line, rules=config.rules, anchor=config.anchor)
        self.timings = StageTimings()

    @property
    def totals(self) -> Counter[tuple[str, Direction]]:
        return self.counter.totals

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        detections = self.detector.detect(frame.image)
        t1 = time.perf_counter()
        update = self.tracker.update(detections)
        t2 = time.perf_counter()
        crossings = []
        for track in update.active:
            crossing = self.counter.observe(track, frame.index, frame.timestamp)
            if crossing is not None:
                crossings.append(crossing)
        for track in update.ended:
            crossing = self.counter.finish(track, frame.index, frame.timestamp)
            if crossing is not None:
                crossings.append(crossing)
        occupancy = {z.name: z.occupancy(list(update.active), self.config.anchor) for z in self.config.zones}
        t3 = time.perf_counter()
        self.timings.add("detect", t1 - t0)
        self.timings.add("track", t2 - t1)
        self.timings.add("count", t3 - t2)
        self.timings.frames += 1
        return FrameResult(frame, detections, update.active, crossings, occupancy)

    def finish(self, frame_index: int, timestamp: float) -> list[Crossing]:
        """End of the stream: end every track so crossings in progress are settled."""
        crossings = []
        for track in self.tracker.drain():
            crossing = self.counter.finish(track, frame_index, timestamp)
            if crossing is not None:
                crossings.append(crossing)
        return crossings


@dataclass
class CountReport:
    totals: dict[str, dict[str, int]]  # object class -> {"in": n, "out": n}
    crossings: list[Crossing]
    frames: int
    seconds: float
    timings: StageTimings
    suppressed_frames: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def count(self, direction: str, object_class: str | None = None) -> int:
        return sum(v.get(direction, 0) for k, v in self.totals.items() if object_class in (None, k))

    def to_json(self) -> dict[str, Any]:
        return {
            "totals": self.totals,
            "crossings": [
                {
                    "frame": c.frame_index,
                    "track_id": c.track_id,
                    "direction": str(c.direction),
                    "object_class": c.object_class,
                    "confidence": round(c.confidence, 3),
                }
                for c in self.crossings
            ],
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 1),
            "stage_ms_per_frame": {k: round(v, 3) for k, v in self.timings.per_frame_ms().items()},
            "suppressed_frames": self.suppressed_frames,
        }


def summarise(
    totals: Counter[tuple[str, Direction]], classes: tuple[str, ...] = ()
) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {c: {"in": 0, "out": 0} for c in classes}
    for (object_class, direction), n in totals.items():
        result.setdefault(object_class, {"in": 0, "out": 0})[str(direction)] = n
    return result


def count_file(
    path: str | Path,
    config: PipelineConfig,
    *,
    detector: Detector | None = None,
    on_frame: Callable[[FrameResult, CountingPipeline], None] | None = None,
    max_frames: int | None = None,
) -> CountReport:
    """Count a video file offline, as fast as it decodes."""
    capture = Capture(str(path), start_time=0.0)
    pipeline = CountingPipeline(config, detector)
    crossings: list[Crossing] = []
    started = time.perf_counter()
    frames = capture.frames()
    last_index, last_time = 0, 0.0
    while max_frames is None or pipeline.timings.frames < max_frames:
        t0 = time.perf_counter()
        frame = next(frames, None)
        pipeline.timings.add("capture", time.perf_counter() - t0)
        if frame is None:
            break
        last_index, last_time = frame.index, frame.timestamp
        result = pipeline.process(frame)
        crossings.extend(result.crossings)
        if on_frame is not None:
            on_frame(result, pipeline)
    crossings.extend(pipeline.finish(last_index, last_time))
    elapsed = time.perf_counter() - started
    suppressed = int(getattr(pipeline.detector, "suppressed_frames", 0))
    return CountReport(
        summarise(pipeline.totals, (config.object_class,) if config.detector == "motion" else ()),
        crossings,
        pipeline.timings.frames,
        elapsed,
        pipeline.timings,
        suppressed,
    )
