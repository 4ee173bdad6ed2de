"""Motion detector: background subtraction (MOG2), morphology, blob boxes.

It runs on a downscaled copy of the frame (``work_width``, default 320 px): blob boxes
need no more resolution than that, and MOG2's cost is proportional to the pixel count,
which is what makes the 50 fps budget at 640x360 on one core reachable.

Global changes are guarded twice. A global brightness change (a flash, a lamp, auto
exposure) is compensated: the frame is scaled back to the reference brightness, and a
frame that arrived with a jump is not learned, so a flash leaves no trace; the reference
then follows the scene slowly, at about MOG2's own learning pace. A change
compensation cannot undo (most of the picture reads as foreground) produces no detections;
if it lasts ``settle_frames`` it is the new normal and the background is re-learned.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from camcount.edge.detectors import Detection, Image


class MotionDetector:
    def __init__(
        self,
        *,
        label: str = "person",
        work_width: int = 320,
        min_area: float = 0.002,  # fraction of the frame area; smaller blobs are noise
        history: int = 500,
        var_threshold: float = 25.0,
        open_kernel: int = 3,
        close_kernel: int = 7,
        shadows: bool = False,  # MOG2 shadow detection: dearer, but drops floor shadows from blobs
        jump: float = 0.12,  # frame-to-frame gain change that counts as sudden (12 %)
        max_foreground: float = 0.45,  # fraction of the frame; above it the frame is "global"
        settle_frames: int = 5,  # a change lasting this long is accepted as the new normal
        adapt_rate: float = 0.002,  # how fast the reference follows the scene (~MOG2's 1/history)
    ) -> None:
        self.label = label
        self.work_width = work_width
        self.min_area = min_area
        self.jump = jump
        self.shadows = shadows
        self.max_foreground = max_foreground
        self.settle_frames = settle_frames
        self.adapt_rate = adapt_rate
        self.subtractor = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=var_threshold, detectShadows=shadows
        )
        self.open_kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (open_kernel, open_kernel))
        self.close_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close_kernel, close_kernel))
        self.reference: NDArray[np.float32] | None = None  # thumbnail of the usual scene
        self.previous_gain = 1.0
        self.unsettled = 0
        self.suppressed_frames = 0  # frames ignored by the global-change guard (reported)

    def detect(self, image: Image) -> list[Detection]:
        height, width = image.shape[:2]
        scale = min(1.0, self.work_width / width)
        small = image
        if scale < 1.0:
            size = (self.work_width, round(height * scale))
            small = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        lut, sudden = self._exposure(small)
        if lut is not None:
            # Exposure compensation: map the frame's tones back onto the reference's, so a
            # global change (auto exposure, a lamp) is not foreground at all.
            small = np.asarray(cv2.LUT(small, lut), dtype=np.uint8)
        # Never learn a frame that arrived with a jump: if it was a flash, it must not
        # become background; if it lasts, the slow reference update hands it over.
        mask = self.subtractor.apply(small, learningRate=0.0 if sudden else -1.0)
        if self.shadows:
            # Shadows come back as 127: keep only real foreground (255).
            mask = np.asarray(cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY)[1], dtype=np.uint8)
        foreground = cv2.countNonZero(mask) / mask.size
        if foreground > self.max_foreground:
            return self._suppress(small)
        self.unsettled = 0
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.open_kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.close_kernel)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_pixels = self.min_area * mask.size
        detections = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if w * h < min_pixels:
                continue
            area = cv2.contourArea(contour)
            if area < min_pixels * 0.5:
                continue
            # Fill ratio as the score: a solid moving object fills its box, noise and
            # thin shadows do not.
            score = float(min(1.0, 0.3 + area / (w * h)))
            detections.append(
                Detection((x / scale, y / scale, (x + w) / scale, (y + h) / scale), score, self.label)
            )
        return detections

    def _exposure(self, small: Image) -> tuple[NDArray[np.uint8] | None, bool]:
        """A tone map from this frame back to the reference, and whether exposure jumped.

        Auto exposure changes gain and contrast (measured on the car clip: a gamma-like
        curve, ``log cur = a + b log ref`` with b up to 1.7), so a single gain is not
        enough. The curve is fitted on a 64x36 thumbnail against a slowly updated
        reference, using only pixels whose ratio is near the median ratio: the objects
        themselves (a white car entering) are outliers and must not bend the curve.
        """
        thumb = np.asarray(
            cv2.resize(small[:, :, 1], (64, 36), interpolation=cv2.INTER_AREA), dtype=np.float32
        )
        thumb += 1.0
        if self.reference is None:
            self.reference = thumb
        ratio = thumb / self.reference
        gain = float(np.median(ratio))
        previous, self.previous_gain = self.previous_gain, gain
        sudden = abs(gain / previous - 1.0) > self.jump
        self.reference += self.adapt_rate * (thumb - self.reference)
        if abs(gain - 1.0) < 0.03:
            return None, sudden
        inliers = np.abs(ratio / gain - 1.0) < 0.15
        b, a = 1.0, float(np.log(gain))
        if inliers.mean() > 0.3:
            fit = np.polyfit(np.log(self.reference[inliers]), np.log(thumb[inliers]), 1)
            if 0.4 < fit[0] < 2.5:
                b, a = float(fit[0]), float(fit[1])
        values = np.arange(1.0, 257.0)
        lut = np.clip(np.exp((np.log(values) - a) / b) - 1.0, 0, 255)
        return lut.astype(np.uint8), sudden

    def _suppress(self, small: Image) -> list[Detection]:
        """Most of the picture changed in a way compensation could not undo (a lamp lit
        half the scene, the camera moved): report nothing; if it lasts, relearn."""
        self.suppressed_frames += 1
        self.unsettled += 1
        if self.unsettled >= self.settle_frames:
            self.subtractor.apply(small, learningRate=1.0)  # rate 1 replaces the model
            self.reference = None
            self.previous_gain = 1.0
            self.unsettled = 0
        return []
