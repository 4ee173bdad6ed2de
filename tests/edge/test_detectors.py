"""The ONNX detector on a tiny model built here, HOG on a synthetic frame, and capture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from camcount.edge.capture import Capture, FrameSkipper
from camcount.edge.detectors import make_detector
from camcount.edge.detectors.onnx_model import OnnxDetector


def tiny_model(path: Path, rows: np.ndarray, *, transpose: bool) -> Path:
    """A 64x64 "detector": fixed candidate rows whose class scores are multiplied by the
    input's mean brightness, so a black frame detects nothing and a bright one does."""
    # Real exports have thousands of candidates (the long axis); pad to keep that true.
    rows = np.vstack([rows, np.zeros((16, rows.shape[1]))])
    const = numpy_helper.from_array(rows.astype(np.float32)[None], "rows")  # [1, N, 4 + C]
    scale = np.zeros(rows.shape[1], np.float32)
    scale[4:] = 1.0
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Reshape", ["mean", "one"], ["mean1"]),
        helper.make_node("Mul", ["scale", "mean1"], ["class_gain"]),
        helper.make_node("Add", ["class_gain", "box_keep"], ["gain"]),
        helper.make_node("Mul", ["rows", "gain"], ["scored"]),
    ]
    output = "scored"
    shape = (1, rows.shape[0], rows.shape[1])
    if transpose:
        shape = (1, rows.shape[1], rows.shape[0])
        nodes.append(helper.make_node("Transpose", ["scored"], ["output"], perm=[0, 2, 1]))
        output = "output"
    inits = [const, numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(np.array([1], np.int64), "one"),
             numpy_helper.from_array((1.0 - scale).astype(np.float32), "box_keep")]  # fmt: skip
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, list(shape))], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


# cx, cy, w, h in model pixels, then scores for classes person(0), bicycle(1), car(2).
ROWS = np.array([
    [32, 32, 16, 32, 0.9, 0.0, 0.0],   # a person in the middle
    [33, 32, 16, 32, 0.8, 0.0, 0.0],   # the same person again: NMS must drop it
    [10, 40, 12, 8, 0.0, 0.0, 0.7],    # a car, bottom left
    [50, 20, 8, 8, 0.1, 0.0, 0.0],     # too weak
])  # fmt: skip


@pytest.mark.parametrize("transpose", [False, True])
def test_onnx_boxes_are_mapped_back_through_the_letterbox(tmp_path: Path, transpose: bool) -> None:
    detector = OnnxDetector(
        model_path=tiny_model(tmp_path / "m.onnx", ROWS, transpose=transpose), min_score=0.3
    )
    frame = np.full((64, 128, 3), 255, np.uint8)  # 2:1 frame -> scale 0.5, 16 px bars top and bottom
    found = sorted(detector.detect(frame), key=lambda d: d.label)
    assert [d.label for d in found] == ["person", "vehicle"]
    person, car = found
    assert person.box == pytest.approx(
        (48.0, 0.0, 80.0, 64.0), abs=0.01
    )  # model y 16..48 minus 16 px bar, x2
    assert 0.3 < car.score < person.score < 0.9  # scaled by the frame's mean (grey letterbox bars)
    assert car.box == pytest.approx((8.0, 40.0, 32.0, 56.0), abs=0.01)


def test_onnx_input_really_reaches_the_model(tmp_path: Path) -> None:
    detector = OnnxDetector(model_path=tiny_model(tmp_path / "m.onnx", ROWS, transpose=False))
    assert detector.detect(np.zeros((64, 64, 3), np.uint8)) == []


def test_onnx_yolov5_layout_multiplies_objectness(tmp_path: Path) -> None:
    rows = np.array([[32, 32, 16, 16, 0.5, 0.9], [32, 32, 16, 16, 0.1, 0.9]])
    detector = OnnxDetector(
        model_path=tiny_model(tmp_path / "m.onnx", rows, transpose=False), layout="yolov5"
    )
    padded = np.vstack([rows, np.zeros((16, 6))])[None].astype(np.float32)
    found = detector.postprocess(padded, 1.0, 0.0, 0.0, (64, 64))
    assert len(found) == 1 and found[0].score == pytest.approx(0.45)


@pytest.mark.parametrize(
    ("options", "error"), [({}, ValueError), ({"model_path": "/nope.onnx"}, FileNotFoundError)]
)
def test_onnx_needs_an_existing_model_file(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        make_detector("onnx", **options)


def test_hog_finds_nothing_in_an_empty_scene_and_runs_on_any_size() -> None:
    detector = make_detector("hog")
    rng = np.random.default_rng(0)
    frame = (rng.random((360, 640, 3)) * 40 + 100).astype(np.uint8)
    assert detector.detect(frame) == []


class FlakyReader:
    """A stream that delivers ``frames`` frames per connection, then drops."""

    def __init__(self, frames: int, opened: bool = True) -> None:
        self.left, self.opened = frames, opened

    def isOpened(self) -> bool:
        return self.opened

    def read(self) -> tuple[bool, Any]:
        self.left -= 1
        return (True, np.zeros((4, 6, 3), np.uint8)) if self.left >= 0 else (False, None)

    def grab(self) -> bool:
        self.left -= 1
        return self.left >= 0

    def get(self, prop: int) -> float:
        return 10.0

    def release(self) -> None:
        pass


def test_a_dropped_stream_is_reopened_with_backoff() -> None:
    attempts: list[bool] = [True, False, False, True, True]  # open, fail, fail, open, open
    sleeps: list[float] = []

    def opener(target: str | int) -> FlakyReader:
        return FlakyReader(3, attempts.pop(0)) if attempts else FlakyReader(0, False)

    capture = Capture("rtsp://camera/stream", opener=opener, sleep=sleeps.append, max_reconnects=2)
    frames = list(capture.frames())
    assert len(frames) == 9 and capture.stats.reconnects == 3
    assert len(sleeps) == 4 and all(s >= 0 for s in sleeps)  # two failed opens, then giving up after two


def test_frames_are_skipped_when_processing_is_slower_than_the_camera() -> None:
    skipper = FrameSkipper(source_fps=25.0)
    assert skipper.frames_to_skip() == 0
    skipper.record(0.030)  # 30 ms per frame at 40 ms per frame: keeping up
    assert skipper.frames_to_skip() == 0
    for _ in range(50):
        skipper.record(0.100)  # 100 ms: 2.5 frames' worth
    assert skipper.frames_to_skip() == 2
    readers = [FlakyReader(20)]

    def opener(target: str | int) -> FlakyReader:
        return readers.pop(0) if readers else FlakyReader(0, False)

    capture = Capture("0", opener=opener, max_reconnects=0, skipper=skipper, sleep=lambda _: None)
    frames = list(capture.frames())
    assert len(frames) == 6 and capture.stats.frames_skipped == 14  # read 1, drop 2, ... of 20
    assert [f.index for f in frames[:3]] == [2, 5, 8]
