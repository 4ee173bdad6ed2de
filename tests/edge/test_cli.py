from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
from typer.testing import CliRunner

from camcount.cli.edge import app
from camcount.edge.scenes import Scene
from tests.edge.conftest import KEY, FakeApi

runner = CliRunner()


def line_arg(scene: Scene) -> str:
    return ",".join(str(v) for v in (scene.line.x1, scene.line.y1, scene.line.x2, scene.line.y2))


def test_count_prints_totals_as_json_and_writes_a_preview(
    tmp_path: Path, scene_videos: dict[str, tuple[Scene, Path]]
) -> None:
    scene, video = scene_videos["both_ways"]
    preview = tmp_path / "preview.jpg"
    result = runner.invoke(
        app, ["count", str(video), "--line", line_arg(scene), "--json", "--preview", str(preview)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["totals"] == {"person": {"in": 3, "out": 2}}
    image = cv2.imread(str(preview))
    assert image is not None and image.shape == (180, 320, 3)


def test_count_prints_a_readable_summary(scene_videos: dict[str, tuple[Scene, Path]]) -> None:
    scene, video = scene_videos["exit_after_crossing"]
    result = runner.invoke(app, ["count", str(video), "--line", line_arg(scene), "--anchor", "center"])
    assert result.exit_code == 0 and "vehicle: in 2  out 0" in result.output


def test_bad_input_is_a_clear_error_not_a_traceback(
    tmp_path: Path, scene_videos: dict[str, tuple[Scene, Path]]
) -> None:
    _, video = scene_videos["both_ways"]
    cases = [
        ["count", str(video), "--line", "1,2,3"],
        ["count", str(video), "--line", "0,0,10,10", "--detector", "yolo"],
        ["count", str(video), "--line", "0,0,10,10", "--detector", "onnx"],
        ["count", str(tmp_path / "missing.avi"), "--line", "0,0,10,10"],
        ["count", str(video)],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and "Traceback" not in result.output


def test_run_fetches_the_line_from_the_camera_record(
    tmp_path: Path, fake_api: FakeApi, scene_videos: dict[str, tuple[Scene, Path]]
) -> None:
    _, video = scene_videos["exit_after_crossing"]
    fake_api.camera_config = {"line": [10, 165, 310, 165], "detector": "motion", "anchor": "center",
                              "interval_seconds": 2}  # fmt: skip
    args = ["run", "--source", str(video), "--api", fake_api.url, "--tenant", "acme", "--camera-id", "9",
            "--key", KEY, "--spool", str(tmp_path / "s.sqlite"), "--start-time", "2026-01-01T00:00:00+00:00"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert fake_api.totals() == {"in": 2}
    assert {e["object_class"] for e in fake_api.accepted.values()} == {"vehicle"}
    assert all(e["event_id"].startswith("c9-20260101T0000") for e in fake_api.accepted.values())


def test_run_with_a_wrong_key_stops_with_a_configuration_error(
    tmp_path: Path, fake_api: FakeApi, scene_videos: dict[str, tuple[Scene, Path]]
) -> None:
    _, video = scene_videos["exit_after_crossing"]
    args = ["run", "--source", str(video), "--api", fake_api.url, "--tenant", "acme", "--camera-id", "9",
            "--key", "ck_wrong", "--spool", str(tmp_path / "s.sqlite")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 3 and "401" in result.output


def test_the_cli_module_imports_without_the_edge_extra() -> None:
    code = ("import sys; import camcount.cli.edge; "
            "bad = {'cv2', 'numpy', 'onnxruntime', 'scipy'} & set(sys.modules); assert not bad, bad")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)
