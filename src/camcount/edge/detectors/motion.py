"""Motion detector: background subtraction (MOG2), morphology, blob boxes.

It runs on a downscaled copy of the frame (``work_width``, default 320 px): blob boxes
need no more resolution than that, and MOG2's cost is proportional to the pixel count,
which is what makes the 50 fps budget at 640x360 on one core reachable.

Global changes are guarded twice. A uniform brightness change (a flash, a lamp, auto
exposure) is compensated: the frame is shifted back to the background's brightness, and a
frame that arrived with a jump is not learned, so a flash leaves no trace; the reference
brightness then follows the scene slowly, at about MOG2's own learning pace. A change
compensation cannot undo (most of the picture reads as foreground) produces no detections;
if it lasts ``settle_frames`` it is the new normal and the background is re-learned.
"""

from __future__ import annotations

import cv2
import numpy as np

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
        brightness_jump: float = 18.0,  # grey levels of mean brightness change, frame to frame
        max_foreground: float = 0.45,  # fraction of the frame; above it the frame is "global"
        settle_frames: int = 5,  # a change lasting this long is accepted as the new normal
        adapt_rate: float = 0.002,  # how fast the reference brightness follows the scene (~MOG2's)
    ) -> None:
        self.label = label
        self.work_width = work_width
        self.min_area = min_area
        self.brightness_jump = brightness_jump
        self.max_foreground = max_foreground
        self.settle_frames = settle_frames
        self.adapt_rate = adapt_rate
        self.subtractor = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=var_threshold, detectShadows=False
        )
        self.open_kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (open_kernel, open_kernel))
        self.close_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close_kernel, close_kernel))
        self.reference_brightness: float | None = None
        self.unsettled = 0
        self.suppressed_frames = 0  # frames ignored by the global-change guard (reported)

    def detect(self, image: Image) -> list[Detection]:
        height, width = image.shape[:2]
        scale = min(1.0, self.work_width / width)
        small = image
        if scale < 1.0:
            size = (self.work_width, round(height * scale))
            small = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        brightness = float(cv2.mean(small)[1])  # green ~ luminance, cheaper than cvtColor
        if self.reference_brightness is None:
            self.reference_brightness = brightness
        offset = self.reference_brightness - brightness
        sudden = abs(offset) > self.brightness_jump
        if abs(offset) >= 1.0:
            # Exposure compensation: shift the frame back to the background's brightness, so
            # a uniform change (a lamp, auto exposure) is not foreground at all.
            shift = cv2.add if offset > 0 else cv2.subtract
            small = np.asarray(shift(small, np.full(3, abs(offset))), dtype=np.uint8)
        # Never learn a frame that arrived with a jump: if it was a flash, it must not
        # become background; if it lasts, the slow reference update below hands it over.
        mask = self.subtractor.apply(small, learningRate=0.0 if sudden else -1.0)
        foreground = cv2.countNonZero(mask) / mask.size
        if foreground > self.max_foreground:
            return self._suppress(small, brightness)
        self.unsettled = 0
        self.reference_brightness += self.adapt_rate * (brightness - self.reference_brightness)
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

    def _suppress(self, small: Image, brightness: float) -> list[Detection]:
        """Most of the picture changed in a way compensation could not undo (a lamp lit
        half the scene, the camera moved): report nothing; if it lasts, relearn."""
        self.suppressed_frames += 1
        self.unsettled += 1
        if self.unsettled >= self.settle_frames:
            self.subtractor.apply(small, learningRate=1.0)  # rate 1 replaces the model
            self.reference_brightness = brightness
            self.unsettled = 0
        return []
