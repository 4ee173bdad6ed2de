"""Edge worker benchmark: fps per detector, cost per pipeline stage, accuracy table.

Run: ``.venv/bin/python -m bench.edge_bench``. Pinned to one CPU core with
``cv2.setNumThreads(1)`` (and CPU affinity where the OS allows), frames at 640x360: the
budget in issue 6 is >= 50 fps for the default (motion) pipeline on one core.
Clips: sample videos by Intel IoT Developer Kit, CC BY 4.0.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from camcount.edge.capture import Frame
from camcount.edge.count import Line
from camcount.edge.detectors import make_detector
from camcount.edge.labels import CLIPS_DIR_DEFAULT, load_labels, match
from camcount.edge.pipeline import STAGES, CountingPipeline, PipelineConfig, count_file
from camcount.edge.scenes import render, standard_scenes

SIZE = (640, 360)
HOG_FRAMES = 60


def pin_one_core() -> str:
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        return "pinned to one core (sched_setaffinity) and cv2.setNumThreads(1)"
    return "cv2.setNumThreads(1)"


def decode(path: Path) -> tuple[list[np.ndarray], float]:
    """All frames resized to 640x360, and the decode+resize cost per frame (ms)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    started = time.perf_counter()
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA))
    capture.release()
    return frames, 1000 * (time.perf_counter() - started) / max(len(frames), 1)


def detector_fps(name: str, frames: list[np.ndarray]) -> float:
    detector = make_detector(name)
    started = time.perf_counter()
    for image in frames:
        detector.detect(image)
    return len(frames) / (time.perf_counter() - started)


def stage_costs(frames: list[np.ndarray], decode_ms: float, line: Line) -> dict[str, float]:
    pipeline = CountingPipeline(PipelineConfig(line=line))
    for i, image in enumerate(frames):
        pipeline.process(Frame(i, i / 25.0, image))
    costs = pipeline.timings.per_frame_ms()
    costs["capture"] = decode_ms
    return costs


def main() -> None:
    print("# Edge worker benchmark\n")
    print(
        f"Setup: {pin_one_core()}; frames resized to {SIZE[0]}x{SIZE[1]}; clips by Intel IoT Developer Kit, CC BY 4.0.\n"
    )
    clips, tolerance, _ = load_labels()
    decoded = {name: decode(CLIPS_DIR_DEFAULT / name) for name in sorted({c.file for c in clips})}

    print("## Frames per second per detector (detector only, one core, 640x360)\n")
    print("| clip | frames | motion | hog (first 60 frames) | onnx |")
    print("|---|---|---|---|---|")
    for name, (frames, _) in decoded.items():
        motion = detector_fps("motion", frames)
        hog = detector_fps("hog", frames[:HOG_FRAMES])
        print(
            f"| {name} | {len(frames)} | {motion:.0f} | {hog:.1f} | n/a: operator-supplied model, none shipped |"
        )

    print("\n## Whole default pipeline, cost per stage (ms per frame, one core, 640x360)\n")
    header = " | ".join(STAGES)
    print(f"| clip | {header} | total | fps |")
    print("|---|" + "---|" * (len(STAGES) + 2))
    for name, (frames, decode_ms) in decoded.items():
        h = frames[0].shape[0]
        costs = stage_costs(frames, decode_ms, Line(0, h / 2, SIZE[0], h / 2))
        total = sum(costs[s] for s in STAGES)
        cells = " | ".join(f"{costs[s]:.2f}" for s in STAGES)
        print(f"| {name} | {cells} | {total:.2f} | {1000 / total:.0f} |")

    print("\n## Accuracy: expected against counted\n")
    print("| scene / clip | expected in/out | counted in/out | exact | fps (native size) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for scene in standard_scenes():
            video = render(scene, Path(tmp) / f"{scene.name}.avi")
            config = PipelineConfig(line=scene.line, anchor=scene.anchor, object_class=scene.object_class)
            report = count_file(video, config)
            expected = scene.expected()
            got = report.totals.get(scene.object_class, {"in": 0, "out": 0})
            ok = "yes" if got == expected else "**no**"
            print(f"| synthetic `{scene.name}` | {expected['in']}/{expected['out']} | {got['in']}/{got['out']} | {ok} | "
                  f"{report.fps:.0f} |")  # fmt: skip
    for clip in clips:
        config = PipelineConfig(line=clip.line, anchor=clip.anchor, object_class=clip.object_class)
        report = count_file(CLIPS_DIR_DEFAULT / clip.file, config)
        result = match(clip.crossings, report.crossings, tolerance)
        expected = clip.expected()
        got = report.totals.get(clip.object_class, {"in": 0, "out": 0})
        detail = f"matched {result.matched}/{len(clip.crossings)}, extra {len(result.extra)}"
        ok = "yes" if got == expected and not result.extra and not result.missed else f"no ({detail})"
        print(f"| {clip.file}: {clip.setup.split(':')[0]} | {expected['in']}/{expected['out']} | "
              f"{got['in']}/{got['out']} | {ok} | {report.fps:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
