"""Detector backed by an operator-supplied ONNX model, run with onnxruntime on the CPU.

Supported output layouts (the common single-output YOLO exports):

* ``yolov8``: ``[1, 4 + C, N]`` or ``[1, N, 4 + C]``; rows ``cx, cy, w, h, class scores``.
* ``yolov5``: ``[1, N, 5 + C]``; rows ``cx, cy, w, h, objectness, class scores``.

Coordinates are in the model's input pixels; the frame is letterboxed into the input
(aspect kept, grey padding) and boxes are mapped back. Classes are mapped to counting
labels with ``class_map`` (COCO ids by default: person, and cars/buses/trucks/motorbikes
as ``vehicle``); other classes are dropped. Nothing is downloaded: the model is a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from camcount.edge.detectors import Detection, Image

COCO_CLASS_MAP: dict[int, str] = {
    0: "person",
    1: "bicycle",
    2: "vehicle",
    3: "vehicle",
    5: "vehicle",
    7: "vehicle",
}


class OnnxDetector:
    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        layout: str = "yolov8",
        class_map: dict[int, str] | None = None,
        min_score: float = 0.35,
        nms_threshold: float = 0.45,
        input_size: int = 640,  # used when the model's input dimensions are dynamic
        threads: int = 1,
    ) -> None:
        if model_path is None:
            raise ValueError("the onnx detector needs a model file (--model PATH)")
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        if layout not in ("yolov8", "yolov5"):
            raise ValueError(f"unknown ONNX output layout {layout!r} (yolov8 or yolov5)")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session: Any = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        self.input_name: str = model_input.name
        shape = model_input.shape
        self.input_h = shape[2] if isinstance(shape[2], int) else input_size
        self.input_w = shape[3] if isinstance(shape[3], int) else input_size
        self.layout = layout
        self.class_map = COCO_CLASS_MAP if class_map is None else class_map
        self.min_score = min_score
        self.nms_threshold = nms_threshold

    def letterbox(self, image: Image) -> tuple[NDArray[np.float32], float, float, float]:
        """Frame to NCHW float input; returns it with the scale and the padding offsets."""
        height, width = image.shape[:2]
        ratio = min(self.input_w / width, self.input_h / height)
        new_w, new_h = round(width * ratio), round(height * ratio)
        pad_x, pad_y = (self.input_w - new_w) / 2, (self.input_h - new_h) / 2
        canvas = np.full((self.input_h, self.input_w, 3), 114, dtype=np.uint8)
        left, top = int(pad_x), int(pad_y)
        canvas[top : top + new_h, left : left + new_w] = cv2.resize(image, (new_w, new_h))
        tensor = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        return tensor.transpose(2, 0, 1)[None], ratio, float(left), float(top)

    def detect(self, image: Image) -> list[Detection]:
        tensor, ratio, pad_x, pad_y = self.letterbox(image)
        (output,) = self.session.run(None, {self.input_name: tensor})[:1]
        return self.postprocess(np.asarray(output, dtype=np.float32), ratio, pad_x, pad_y, image.shape[:2])

    def postprocess(
        self, output: NDArray[np.float32], ratio: float, pad_x: float, pad_y: float, frame_hw: tuple[int, ...]
    ) -> list[Detection]:
        rows = output.reshape(output.shape[-2], output.shape[-1])
        attributes = 5 if self.layout == "yolov5" else 4
        # Exports differ in whether attributes or candidates come last; the attribute axis is
        # the short one (4 + classes is far below the thousands of candidate anchors).
        if rows.shape[0] < rows.shape[1]:
            rows = rows.T
        if rows.shape[1] <= attributes:
            raise ValueError(
                f"ONNX output has {rows.shape[1]} attributes per row; layout {self.layout} needs more"
            )
        class_scores = rows[:, attributes:]
        class_ids = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(len(rows)), class_ids]
        if self.layout == "yolov5":
            scores = scores * rows[:, 4]
        keep = scores >= self.min_score
        if not keep.any():
            return []
        rows, scores, class_ids = rows[keep], scores[keep], class_ids[keep]
        height, width = frame_hw[0], frame_hw[1]
        x1 = np.clip((rows[:, 0] - rows[:, 2] / 2 - pad_x) / ratio, 0, width)
        y1 = np.clip((rows[:, 1] - rows[:, 3] / 2 - pad_y) / ratio, 0, height)
        x2 = np.clip((rows[:, 0] + rows[:, 2] / 2 - pad_x) / ratio, 0, width)
        y2 = np.clip((rows[:, 1] + rows[:, 3] / 2 - pad_y) / ratio, 0, height)
        detections = []
        for class_id in np.unique(class_ids):
            label = self.class_map.get(int(class_id))
            if label is None:
                continue
            idx = np.flatnonzero(class_ids == class_id)
            boxes = [[float(x1[i]), float(y1[i]), float(x2[i] - x1[i]), float(y2[i] - y1[i])] for i in idx]
            kept = cv2.dnn.NMSBoxes(boxes, scores[idx].tolist(), self.min_score, self.nms_threshold)
            for k in np.asarray(kept).reshape(-1):
                i = idx[int(k)]
                box = (float(x1[i]), float(y1[i]), float(x2[i]), float(y2[i]))
                detections.append(Detection(box, float(min(1.0, scores[i])), label))
        return detections
