"""OpenCV's built-in HOG + linear SVM people detector (Dalal & Triggs).

Needs no model file; it exists in opencv-python-headless below 5, which is why the
``edge`` extra pins OpenCV 4. Slow (a few frames per second at 640x360 on one core) and
only finds upright people at least ~128 px tall at its working scale.
"""

from __future__ import annotations

import cv2
import numpy as np

from camcount.edge.detectors import Detection, Image


class HogDetector:
    def __init__(
        self,
        *,
        work_width: int = 640,
        min_score: float = 0.3,
        scale: float = 1.08,
        win_stride: int = 8,
        nms_threshold: float = 0.4,
    ) -> None:
        self.work_width = work_width
        self.min_score = min_score
        self.scale = scale
        self.win_stride = win_stride
        self.nms_threshold = nms_threshold
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32))

    def detect(self, image: Image) -> list[Detection]:
        height, width = image.shape[:2]
        factor = self.work_width / width
        work = image if factor == 1.0 else cv2.resize(image, (self.work_width, round(height * factor)))
        rects, weights = self.hog.detectMultiScale(
            work, winStride=(self.win_stride, self.win_stride), padding=(8, 8), scale=self.scale
        )
        if len(rects) == 0:
            return []
        # SVM margins are unbounded; squash them to 0..1 so they can feed confidence.
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, dtype=np.float64).reshape(-1)))
        boxes = [[int(x), int(y), int(w), int(h)] for x, y, w, h in rects]
        keep = cv2.dnn.NMSBoxes(boxes, scores.tolist(), self.min_score, self.nms_threshold)
        detections = []
        for i in np.asarray(keep).reshape(-1):
            x, y, w, h = boxes[int(i)]
            box = (x / factor, y / factor, (x + w) / factor, (y + h) / factor)
            detections.append(Detection(box, float(scores[int(i)]), "person"))
        return detections
