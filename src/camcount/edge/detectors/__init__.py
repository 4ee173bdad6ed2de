"""Detectors: one frame in, a list of boxes out. Pluggable by name.

``motion`` (default) needs no model and is the cheapest; ``hog`` is OpenCV's built-in
people detector; ``onnx`` runs an operator-supplied model file. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels

DETECTOR_NAMES = ("motion", "hog", "onnx")


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    score: float  # 0..1
    label: str


class Detector(Protocol):
    def detect(self, image: Image) -> list[Detection]: ...


def make_detector(name: str, *, object_class: str = "person", **options: Any) -> Detector:
    """Build a detector by name; ``options`` are passed to its constructor."""
    if name == "motion":
        from camcount.edge.detectors.motion import MotionDetector

        return MotionDetector(label=object_class, **options)
    if name == "hog":
        from camcount.edge.detectors.hog import HogDetector

        return HogDetector(**options)
    if name == "onnx":
        from camcount.edge.detectors.onnx_model import OnnxDetector

        return OnnxDetector(**options)
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTOR_NAMES)}")
