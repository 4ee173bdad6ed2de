"""``camcount edge``: count a video offline, or run the counting worker beside a camera.

Heavy imports (OpenCV, NumPy, onnxruntime) happen inside the commands: the server
installs camcount without the ``edge`` extra and must still import this module.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from camcount.edge.pipeline import PipelineConfig

app = typer.Typer(help="Edge counting worker: video in, line-crossing counts out.", no_args_is_help=True)

EXIT_USAGE = 2
EXIT_DELIVERY_CONFIG = 3

LINE_HELP = "Counting line X1,Y1,X2,Y2 in frame pixels; 'in' is crossing to the right of the direction X1,Y1 -> X2,Y2."
LineOpt = Annotated[str | None, typer.Option("--line", help=LINE_HELP)]
DetectorOpt = Annotated[str | None, typer.Option("--detector", help="motion (default), hog or onnx.")]
ModelOpt = Annotated[Path | None, typer.Option("--model", help="ONNX model file (for --detector onnx).")]
LayoutOpt = Annotated[str, typer.Option("--onnx-layout", help="ONNX output layout: yolov8 or yolov5.")]
ClassOpt = Annotated[
    str | None, typer.Option("--class", help="Object class reported by the motion detector.")
]
AnchorOpt = Annotated[
    str | None, typer.Option("--anchor", help="bottom_center (people) or center (vehicles).")
]
DeadBandOpt = Annotated[
    float | None, typer.Option("--dead-band", help="Pixels either side of the line that count as on it.")
]
MinSideOpt = Annotated[
    int | None, typer.Option("--min-frames-on-side", help="Frames on the new side before counting.")
]
MinAgeOpt = Annotated[
    int | None, typer.Option("--min-track-age", help="Frames a track must have lived to count.")
]
ZoneOpt = Annotated[
    list[str] | None, typer.Option("--zone", help="Occupancy zone NAME:X1,Y1,X2,Y2,X3,Y3[,...]; repeatable.")
]
PreviewOpt = Annotated[
    Path | None, typer.Option("--preview", help="Write an annotated frame (line, arrow, tracks, counts).")
]
ThreadsOpt = Annotated[
    int, typer.Option("--threads", help="OpenCV threads (1 = one core, the budgeted setting).")
]


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _build_config(settings: dict[str, Any]) -> PipelineConfig:
    """Settings (from options, or from the camera's record on the server) to a pipeline config."""
    from camcount.edge.count import Anchor, CrossingRules, Line, Zone
    from camcount.edge.detectors import DETECTOR_NAMES
    from camcount.edge.pipeline import PipelineConfig

    try:
        raw_line = settings.get("line")
        if raw_line is None:
            raise ValueError("no counting line: pass --line X1,Y1,X2,Y2")
        line = Line.parse(raw_line) if isinstance(raw_line, str) else Line(*(float(v) for v in raw_line))
        detector = settings.get("detector") or "motion"
        if detector not in DETECTOR_NAMES:
            raise ValueError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTOR_NAMES)}")
        object_class = settings.get("object_class") or (
            "vehicle" if settings.get("anchor") == "center" else "person"
        )
        anchor = Anchor(
            settings.get("anchor") or ("center" if object_class == "vehicle" else "bottom_center")
        )
        defaults = CrossingRules()
        dead_band = settings.get("dead_band")
        rules = CrossingRules(
            dead_band=float(dead_band) if dead_band is not None else defaults.dead_band,
            min_frames_on_side=int(settings.get("min_frames_on_side") or defaults.min_frames_on_side),
            min_track_age=int(settings.get("min_track_age") or defaults.min_track_age),
        )
        if rules.dead_band < 0 or rules.min_frames_on_side < 1 or rules.min_track_age < 1:
            raise ValueError("dead band must be >= 0, min frames on side and min track age >= 1")
        zones = tuple(Zone.parse(z) for z in settings.get("zones") or ())
        options: dict[str, Any] = {}
        if detector == "onnx":
            options = {"model_path": settings.get("model"), "layout": settings.get("onnx_layout") or "yolov8"}
    except (ValueError, TypeError) as exc:
        raise _fail(str(exc)) from None
    return PipelineConfig(line=line, detector=detector, detector_options=options, object_class=object_class,
                          anchor=anchor, rules=rules, zones=zones)  # fmt: skip


def _make_pipeline(config: PipelineConfig) -> Any:
    from camcount.edge.pipeline import CountingPipeline

    try:
        return CountingPipeline(config)
    except (ValueError, FileNotFoundError, OSError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def count(
    video: Annotated[Path, typer.Argument(help="Video file (anything OpenCV decodes).")],
    line: LineOpt = None,
    detector: DetectorOpt = None,
    model: ModelOpt = None,
    onnx_layout: LayoutOpt = "yolov8",
    object_class: ClassOpt = None,
    anchor: AnchorOpt = None,
    dead_band: DeadBandOpt = None,
    min_frames_on_side: MinSideOpt = None,
    min_track_age: MinAgeOpt = None,
    zone: ZoneOpt = None,
    preview: PreviewOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    threads: ThreadsOpt = 1,
) -> None:
    """Count line crossings in a video file and print in/out totals per class."""
    import cv2

    from camcount.edge.pipeline import CountingPipeline, FrameResult, count_file
    from camcount.edge.preview import annotate, write_image

    cv2.setNumThreads(threads)
    if not video.is_file():
        raise _fail(f"video file not found: {video}")
    config = _build_config({"line": line, "detector": detector, "model": model, "onnx_layout": onnx_layout,
                            "object_class": object_class, "anchor": anchor, "dead_band": dead_band,
                            "min_frames_on_side": min_frames_on_side, "min_track_age": min_track_age,
                            "zones": zone})  # fmt: skip
    pipeline_for_checks = _make_pipeline(config)  # validates the detector (model file, layout) up front
    best: dict[str, Any] = {"score": -1}

    def keep_preview(result: FrameResult, pipe: CountingPipeline) -> None:
        # Keep the frame showing the most confirmed tracks: the most informative picture.
        score = sum(1 for t in result.tracks if t.confirmed)
        if preview is not None and score >= best["score"]:
            image = annotate(
                result.frame.image,
                config.line,
                tracks=result.tracks,
                totals=pipe.totals.copy(),
                zones=config.zones,
                occupancy=result.occupancy,
                anchor=config.anchor,
            )
            best.update(score=score, image=image)

    try:
        report = count_file(video, config, detector=pipeline_for_checks.detector, on_frame=keep_preview)
    except OSError as exc:
        raise _fail(str(exc)) from None
    if preview is not None and "image" in best:
        write_image(preview, best["image"])
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    for object_class_name, totals in sorted(report.totals.items()):
        typer.echo(f"{object_class_name}: in {totals['in']}  out {totals['out']}")
    if not report.totals:
        typer.echo("no crossings")
    typer.echo(f"{report.frames} frames in {report.seconds:.1f} s ({report.fps:.0f} fps)")


@app.command()
def run(
    source: Annotated[
        str, typer.Option("--source", help="Video file, rtsp://... / http://... URL, or device number.")
    ],
    api: Annotated[str, typer.Option("--api", help="camcount API base URL, e.g. https://counts.example.com")],
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant slug.")],
    camera_id: Annotated[int, typer.Option("--camera-id", help="Camera id on the server.", min=1)],
    key: Annotated[
        str,
        typer.Option(
            "--key", envvar="CAMCOUNT_DEVICE_KEY", help="Device key ck_... (or env CAMCOUNT_DEVICE_KEY)."
        ),
    ],
    line: LineOpt = None,
    detector: DetectorOpt = None,
    model: ModelOpt = None,
    onnx_layout: LayoutOpt = "yolov8",
    object_class: ClassOpt = None,
    anchor: AnchorOpt = None,
    dead_band: DeadBandOpt = None,
    min_frames_on_side: MinSideOpt = None,
    min_track_age: MinAgeOpt = None,
    zone: ZoneOpt = None,
    interval: Annotated[
        int | None, typer.Option("--interval", help="Seconds per count event (default 60).", min=1, max=86400)
    ] = None,
    spool: Annotated[
        Path | None, typer.Option("--spool", help="Spool database (default ./camcount-edge-<camera>.sqlite).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Events per request.", min=1, max=5000)
    ] = 500,
    start_time: Annotated[
        str | None, typer.Option("--start-time", help="Files: ISO time of frame 0 (default: file mtime).")
    ] = None,
    preview: PreviewOpt = None,
    threads: ThreadsOpt = 1,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Count continuously and deliver count events to the tenant, exactly once."""
    import cv2

    from camcount.edge.backoff import Backoff
    from camcount.edge.capture import Capture
    from camcount.edge.deliver import ConfigurationError, HttpDeliveryClient, TransientError
    from camcount.edge.worker import WorkerSettings, run_worker

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    cv2.setNumThreads(threads)
    if not key.startswith("ck_"):
        raise _fail("device keys start with ck_")
    if not api.startswith(("http://", "https://")):
        raise _fail("--api must be an http:// or https:// URL")
    start: float | None = None
    if start_time is not None:
        try:
            parsed = datetime.fromisoformat(start_time)
        except ValueError:
            raise _fail(f"--start-time is not ISO 8601: {start_time!r}") from None
        if parsed.tzinfo is None:
            raise _fail("--start-time needs a UTC offset, e.g. 2026-01-01T08:00:00+00:00")
        start = parsed.timestamp()
    client = HttpDeliveryClient(api, tenant, key)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    remote: dict[str, Any] = {}
    if line is None:
        backoff = Backoff(base=1.0, cap=60.0)
        while not stop.is_set():
            try:
                remote = client.fetch_camera(camera_id).get("config") or {}
                break
            except ConfigurationError as exc:
                raise _fail(str(exc), EXIT_DELIVERY_CONFIG) from None
            except TransientError as exc:
                delay = backoff.next_delay()
                typer.echo(
                    f"cannot fetch camera {camera_id} settings ({exc}); retrying in {delay:.0f} s", err=True
                )
                stop.wait(delay)
        if stop.is_set():
            raise typer.Exit(1)
    local = {
        "line": line,
        "detector": detector,
        "model": model,
        "onnx_layout": onnx_layout,
        "object_class": object_class,
        "anchor": anchor,
        "dead_band": dead_band,
        "min_frames_on_side": min_frames_on_side,
        "min_track_age": min_track_age,
        "zones": zone,
    }
    merged = {**remote, **{k: v for k, v in local.items() if v is not None}}
    config = _build_config(merged)
    pipeline = _make_pipeline(config)
    interval_seconds = interval or int(remote.get("interval_seconds") or 60)
    settings = WorkerSettings(
        camera_id=camera_id,
        spool_path=spool or Path(f"camcount-edge-{camera_id}.sqlite"),
        interval_seconds=interval_seconds,
        batch_size=batch_size,
        preview_path=preview,
        report_every_seconds=60.0 if verbose else 300.0,
    )
    capture = Capture(source, start_time=start)
    try:
        report = run_worker(capture, pipeline, client, settings, stop=stop)
    except (OSError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    finally:
        client.close()
    typer.echo(
        f"frames {report.frames} (skipped {report.skipped_frames}, reconnects {report.reconnects}); "
        f"crossings {report.crossings}; delivered {report.delivered}; "
        f"in spool: {report.pending} pending, {report.rejected} rejected"
    )
    if report.configuration_error:
        raise _fail(f"delivery stopped: {report.configuration_error}", EXIT_DELIVERY_CONFIG)
    if report.pending:
        raise typer.Exit(1)  # files: not everything was acknowledged within the drain timeout


if __name__ == "__main__":
    app()
