"""The continuous worker behind ``camcount edge run``: capture -> pipeline -> spool, and a
delivery thread draining the spool to the API.

Exactly once, end to end:

* every crossing is in the spool (committed) before the next frame is read;
* observation keys are deterministic (camera, frame, time, track, direction) and event ids
  are deterministic (camera, interval, type, class), so re-processing a file after a
  crash re-creates the same rows, which the spool and then the server de-duplicate;
* an interval's event is built only when the interval is over, from everything spooled
  for it, including crossings recorded before a crash;
* events leave the spool only after the server acknowledged them.

A live source stamps frames with the wall clock; at start-up the intervals a crash left
open are closed. A file is stamped from its start time (the file's mtime by default), so
a re-run yields the same timestamps; its open intervals are only closed by the re-run
itself, never at start-up, or a half-counted interval could be sent first.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from camcount.edge.aggregate import Observation, interval_start
from camcount.edge.capture import Capture
from camcount.edge.count import Crossing
from camcount.edge.deliver import ConfigurationError, Deliverer, DeliveryClient
from camcount.edge.pipeline import CountingPipeline, FrameResult
from camcount.edge.preview import annotate, write_image
from camcount.edge.spool import Spool, SpoolFullError

log = logging.getLogger(__name__)


@dataclass
class WorkerSettings:
    camera_id: int
    spool_path: Path
    interval_seconds: int = 60
    batch_size: int = 500
    occupancy_sample_seconds: float = 5.0
    preview_path: Path | None = None
    preview_every_seconds: float = 5.0
    report_every_seconds: float = 60.0
    drain_timeout: float = 60.0  # files: how long to keep delivering after the last frame


@dataclass
class WorkerReport:
    frames: int = 0
    skipped_frames: int = 0
    reconnects: int = 0
    crossings: int = 0
    refused: int = 0  # observations the full spool could not take
    delivered: int = 0
    pending: int = 0
    rejected: int = 0
    configuration_error: str | None = None
    stopped_early: bool = False
    lines: list[str] = field(default_factory=list)


class _DeliveryThread(threading.Thread):
    def __init__(self, settings: WorkerSettings, client: DeliveryClient, stop: threading.Event) -> None:
        super().__init__(name="camcount-deliver", daemon=True)
        self.settings, self.client, self.stop = settings, client, stop
        self.error: str | None = None
        self.delivered = 0

    def run(self) -> None:
        with Spool(self.settings.spool_path) as spool:
            deliverer = Deliverer(spool, self.client, batch_size=self.settings.batch_size, idle_wait=0.2)
            try:
                deliverer.run(self.stop)
            except ConfigurationError as exc:
                self.error = str(exc)
                log.error("delivery stopped: %s (counts stay in the spool)", exc)
            finally:
                self.delivered = deliverer.stats.acknowledged


def run_worker(
    capture: Capture,
    pipeline: CountingPipeline,
    client: DeliveryClient,
    settings: WorkerSettings,
    *,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> WorkerReport:
    stop = stop or threading.Event()
    report = WorkerReport()
    camera, seconds = settings.camera_id, settings.interval_seconds
    spool = Spool(settings.spool_path)
    delivery_stop = threading.Event()
    if capture.live:
        spool.close_intervals(time.time())  # leftovers of a crash: no frame will ever join them
    deliverer = _DeliveryThread(settings, client, delivery_stop)
    deliverer.start()
    next_sample = 0.0
    last_preview = last_report = clock()
    closed_until = -math.inf
    last_index, last_time = 0, 0.0
    try:
        for frame in capture.frames():
            started = clock()
            result = pipeline.process(frame)
            last_index, last_time = frame.index, frame.timestamp
            observations = [_crossing_observation(camera, seconds, frame.index, c) for c in result.crossings]
            if result.occupancy and frame.timestamp >= next_sample:
                next_sample = frame.timestamp + settings.occupancy_sample_seconds
                observations += _occupancy_observations(camera, seconds, frame.timestamp, result.occupancy)
            if observations:
                try:
                    spool.record(camera, seconds, observations)
                except SpoolFullError:
                    report.refused += len(observations)  # logged loudly by the spool
                report.crossings += len(result.crossings)
            current = interval_start(frame.timestamp, seconds)
            if current > closed_until:
                spool.close_intervals(frame.timestamp)
                closed_until = current
            now = clock()
            if capture.skipper is not None:
                capture.skipper.record(now - started)
            if settings.preview_path and now - last_preview >= settings.preview_every_seconds:
                _write_preview(settings.preview_path, result, pipeline)
                last_preview = now
            if now - last_report >= settings.report_every_seconds:
                report.lines.append(_progress(capture, pipeline, spool))
                log.info("%s", report.lines[-1])
                last_report = now
            if stop.is_set() or deliverer.error:
                report.stopped_early = True
                break
        else:
            # The source ended (files): settle crossings in progress and close every interval.
            crossings = pipeline.finish(last_index, last_time)
            if crossings:
                spool.record(
                    camera,
                    seconds,
                    [_crossing_observation(camera, seconds, last_index, c) for c in crossings],
                )
                report.crossings += len(crossings)
            spool.close_intervals(math.inf)
            deadline = clock() + settings.drain_timeout
            while spool.pending(1) and not deliverer.error and not stop.is_set() and clock() < deadline:
                time.sleep(0.05)
    finally:
        delivery_stop.set()
        deliverer.join(timeout=30)
        stats = spool.stats()
        spool.close()
    report.frames = capture.stats.frames_read
    report.skipped_frames = capture.stats.frames_skipped
    report.reconnects = capture.stats.reconnects
    report.delivered = deliverer.delivered
    report.pending, report.rejected = stats.pending + stats.open_observations, stats.rejected
    report.configuration_error = deliverer.error
    return report


def _crossing_observation(camera: int, seconds: int, frame_index: int, crossing: Crossing) -> Observation:
    key = f"{camera}:{crossing.timestamp:.3f}:{frame_index}:{crossing.track_id}:{crossing.direction}"
    return Observation(
        key=key,
        interval_start=interval_start(crossing.timestamp, seconds),
        count_type=str(crossing.direction),
        object_class=crossing.object_class,
        zone="",
        value=1,
        confidence=crossing.confidence,
    )


def _occupancy_observations(
    camera: int, seconds: int, timestamp: float, occupancy: dict[str, int]
) -> list[Observation]:
    start = interval_start(timestamp, seconds)
    return [
        Observation(f"{camera}:{timestamp:.3f}:occupancy:{zone}", start, "occupancy", "", zone, value, 1.0)
        for zone, value in occupancy.items()
    ]


def _write_preview(path: Path, result: FrameResult, pipeline: CountingPipeline) -> None:
    config = pipeline.config
    image = annotate(result.frame.image, config.line, tracks=result.tracks, totals=pipeline.totals,
                     zones=config.zones, occupancy=result.occupancy, anchor=config.anchor)  # fmt: skip
    write_image(path, image)


def _progress(capture: Capture, pipeline: CountingPipeline, spool: Spool) -> str:
    stats = spool.stats()
    ms = pipeline.timings.per_frame_ms()
    return (
        f"frames {capture.stats.frames_read} skipped {capture.stats.frames_skipped} "
        f"reconnects {capture.stats.reconnects} | detect {ms['detect']:.1f} ms track {ms['track']:.1f} ms | "
        f"spool pending {stats.pending} rejected {stats.rejected}" + (" FULL" if stats.full else "")
    )
