"""Capture: frames from a file, an RTSP/HTTP stream or a local device, through OpenCV.

Files are read frame by frame with timestamps derived from the frame index and the
file's frame rate, so a file processed twice yields the same timestamps (the spool relies
on that to make a re-run after a crash idempotent). Live sources are stamped with the
wall clock, reconnect with exponential backoff when they drop, and skip frames
adaptively when processing falls behind the camera (see :class:`FrameSkipper`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from camcount.edge.backoff import Backoff

log = logging.getLogger(__name__)

Image = NDArray[np.uint8]


class SourceKind(StrEnum):
    FILE = "file"
    STREAM = "stream"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class Frame:
    index: int  # position in the source, skipped frames included
    timestamp: float  # seconds since the Unix epoch (UTC)
    image: Image


class VideoReader(Protocol):
    """The part of ``cv2.VideoCapture`` we use; tests substitute flaky fakes."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, Any]: ...
    def grab(self) -> bool: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


def classify_source(spec: str) -> tuple[SourceKind, str | int]:
    """``"0"`` is a local device, ``rtsp://``/``http://`` a stream, anything else a file."""
    if spec.isdigit():
        return SourceKind.DEVICE, int(spec)
    if "://" in spec:
        return SourceKind.STREAM, spec
    return SourceKind.FILE, spec


class FrameSkipper:
    """Decides how many frames to drop so processing keeps up with a live source.

    Keeps an exponential moving average of the processing time per frame; when it exceeds
    the camera's frame period, ``ceil(cost / period) - 1`` frames are grabbed and thrown
    away before the next one is decoded. Dropping whole frames keeps the newest picture,
    which matters more for counting than seeing every frame late.
    """

    def __init__(self, source_fps: float, *, smoothing: float = 0.1, max_skip: int = 10) -> None:
        self.period = 1.0 / source_fps if source_fps > 0 else 0.0
        self.smoothing = smoothing
        self.max_skip = max_skip
        self.cost: float | None = None

    def record(self, seconds: float) -> None:
        if self.cost is None:
            self.cost = seconds
        else:
            self.cost += self.smoothing * (seconds - self.cost)

    def frames_to_skip(self) -> int:
        if self.cost is None or self.period <= 0.0:
            return 0
        # A 5 % margin so jitter around exactly real time does not flap between 0 and 1.
        return min(self.max_skip, max(0, math.ceil(self.cost / (self.period * 1.05)) - 1))


@dataclass
class CaptureStats:
    frames_read: int = 0
    frames_skipped: int = 0
    reconnects: int = 0


def _default_opener(target: str | int) -> VideoReader:
    reader: VideoReader = cv2.VideoCapture(target)
    return reader


@dataclass
class Capture:
    """Iterate over frames of ``spec``; see the module docstring for the per-kind rules."""

    spec: str
    width: int | None = None  # resize to this width (aspect kept); None keeps the source size
    start_time: float | None = None  # files: timestamp of frame 0; default the file's mtime
    max_reconnects: int | None = None  # live sources: give up after this many; None = forever
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=30.0))
    opener: Callable[[str | int], VideoReader] = _default_opener
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    skipper: FrameSkipper | None = None
    stats: CaptureStats = field(default_factory=CaptureStats)

    def __post_init__(self) -> None:
        self.kind, self.target = classify_source(self.spec)
        self.fps = 0.0

    @property
    def live(self) -> bool:
        return self.kind is not SourceKind.FILE

    def _open(self) -> VideoReader | None:
        reader = self.opener(self.target)
        if not reader.isOpened():
            reader.release()
            return None
        fps = reader.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and math.isfinite(fps) and fps > 0 else 25.0
        if self.live and self.skipper is None:
            self.skipper = FrameSkipper(self.fps)
        return reader

    def _resize(self, image: Image) -> Image:
        if self.width is None or image.shape[1] == self.width:
            return image
        height = round(image.shape[0] * self.width / image.shape[1])
        return np.asarray(
            cv2.resize(image, (self.width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8
        )

    def frames(self) -> Iterator[Frame]:
        if self.kind is SourceKind.FILE:
            yield from self._file_frames()
        else:
            yield from self._live_frames()

    def _file_frames(self) -> Iterator[Frame]:
        path = Path(str(self.target))
        if not path.is_file():
            raise FileNotFoundError(f"video file not found: {path}")
        reader = self._open()
        if reader is None:
            raise OSError(f"OpenCV cannot open {path} (unsupported codec or container?)")
        start = self.start_time if self.start_time is not None else path.stat().st_mtime
        index = 0
        try:
            while True:
                ok, image = reader.read()
                if not ok or image is None:
                    return
                self.stats.frames_read += 1
                yield Frame(index, start + index / self.fps, self._resize(image))
                index += 1
        finally:
            reader.release()

    def _live_frames(self) -> Iterator[Frame]:
        index = 0
        reader = self._connect()
        try:
            while reader is not None:
                skip = self.skipper.frames_to_skip() if self.skipper else 0
                ok = True
                for _ in range(skip):
                    ok = reader.grab()  # grab without decoding: the cheap way to drop a frame
                    if not ok:
                        break
                    self.stats.frames_skipped += 1
                    index += 1
                image = None
                if ok:
                    ok, image = reader.read()
                if not ok or image is None:
                    log.warning("source %s dropped; reconnecting", self.spec)
                    reader.release()
                    self.stats.reconnects += 1
                    reader = self._connect()
                    continue
                self.stats.frames_read += 1
                yield Frame(index, self.clock(), self._resize(image))
                index += 1
        finally:
            if reader is not None:
                reader.release()

    def _connect(self) -> VideoReader | None:
        attempts = 0
        while True:
            reader = self._open()
            if reader is not None:
                self.backoff.reset()
                return reader
            attempts += 1
            if self.max_reconnects is not None and attempts > self.max_reconnects:
                log.error("giving up on source %s after %d attempts", self.spec, attempts)
                return None
            delay = self.backoff.next_delay()
            log.warning("cannot open %s; retrying in %.1f s", self.spec, delay)
            self.sleep(delay)
