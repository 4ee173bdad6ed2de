"""The worker as a real subprocess (``python -m camcount.cli.edge run``) against a real
HTTP server: killed with SIGKILL mid-delivery, or started while the server is down, every
count still arrives exactly once and the totals equal the scene's ground truth."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from camcount.edge.scenes import Scene
from tests.edge.conftest import KEY, FakeApi, start_fake_api


def worker(scene: Scene, video: Path, api_url: str, spool: Path) -> subprocess.Popen[bytes]:
    line = ",".join(str(v) for v in (scene.line.x1, scene.line.y1, scene.line.x2, scene.line.y2))
    args = [sys.executable, "-m", "camcount.cli.edge", "run", "--source", str(video), "--api", api_url,
            "--tenant", "acme", "--camera-id", "5", "--line", line, "--anchor", scene.anchor.value,
            "--class", scene.object_class, "--interval", "1", "--batch-size", "2", "--spool", str(spool),
            "--start-time", "2026-01-01T00:00:00+00:00"]  # fmt: skip
    env = {**os.environ, "CAMCOUNT_DEVICE_KEY": KEY}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_worker_killed_mid_delivery_and_restarted_delivers_exactly_once(
    tmp_path: Path, fake_api: FakeApi, scene_videos: dict[str, tuple[Scene, Path]]
) -> None:
    scene, video = scene_videos["both_ways"]
    spool = tmp_path / "spool.sqlite"
    fake_api.mode = "hang_after_commit"
    first = worker(scene, video, fake_api.url, spool)
    assert fake_api.committed.wait(60), first.stderr.read1().decode() if first.stderr else ""  # type: ignore[union-attr]
    first.send_signal(signal.SIGKILL)  # the server holds a batch the worker never saw acknowledged
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    committed_before_kill = len(fake_api.accepted)
    assert 0 < committed_before_kill < 5
    fake_api.mode = "ok"
    fake_api.release.set()
    second = worker(scene, video, fake_api.url, spool)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err.decode()
    assert fake_api.totals() == scene.expected()  # {"in": 3, "out": 2}
    assert fake_api.duplicates >= 1  # the batch in flight at the kill was sent again...
    assert b"delivered" in out


def test_a_worker_started_while_the_server_is_down_delivers_once_it_is_up(
    tmp_path: Path, scene_videos: dict[str, tuple[Scene, Path]]
) -> None:
    scene, video = scene_videos["edge_line"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = worker(scene, video, f"http://127.0.0.1:{port}", tmp_path / "spool.sqlite")
    time.sleep(2.0)  # the worker counts the file and keeps failing to deliver
    assert proc.poll() is None
    api = FakeApi()
    server = start_fake_api(api, port)
    try:
        _, err = proc.communicate(timeout=90)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, err.decode()
    assert api.totals() == scene.expected() and api.duplicates == 0
