"""The edge worker against the real server: ``camcount edge run`` delivering to ``camcount serve``.

Issue 6: "a video's counts arrive exactly once when the server is stopped halfway and restarted,
and when the worker is killed and restarted", and the camera record holds the line and detector
settings (fetched by ``edge run``, which gets no ``--line``) and shows ``last_delivery_at``.

Everything is real: ``camcount serve`` and ``camcount edge run`` are subprocesses on loopback, the
tenant lives in the test PostgreSQL (pooled and database placements), its site, camera (with
``config``) and device key are created through the HTTP API. Rate limits stay on (the device key
gets ``device_requests_per_second`` of the plan), so the worker also honours real 429s.

"Halfway" is deterministic: the test polls ``GET /events`` until the server has stored some of the
video's events while the worker is still running, then interrupts; afterwards it checks that more
events arrived after the interruption. For the server stop it also waits until the spool shows a
delivery attempt of a still-pending event, so the worker certainly met the dead server.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from camcount.accounts.roles import Role
from camcount.accounts.users import UserRequest, create_user
from camcount.db.pools import Database
from camcount.edge.count import Line
from camcount.edge.scenes import PERSON, Mover, Scene, _down, _up, render
from tests.fixtures.serve import free_port
from tests.fixtures.tenants import TenantFactory

CAMCOUNT = str(Path(sys.executable).with_name("camcount"))
PASSWORD = "end to end password"
INTERVAL = 1  # seconds of video time per event: a 30 s video gives dozens of events
BATCH = 2  # events per request: many requests, paced by the device key's rate limit
# The video's frame 0; on an hour boundary in the past, so /counts can ask for whole hours.
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)

pytestmark = pytest.mark.parametrize("placement", ["pooled", "database"])


def many_crossings(frames: int = 750) -> Scene:
    """People in five lanes, one every 20 frames, two down (in) for each one up (out)."""
    lanes = (40.0, 100.0, 160.0, 220.0, 280.0)
    movers = []
    start, k = 5, 0
    while start + 70 < frames:
        x = lanes[k % len(lanes)]
        if k % 3 == 2:
            movers.append(Mover(PERSON, _up(x, start, speed=3.0), (200, 60, 40)))
        else:
            movers.append(Mover(PERSON, _down(x, start, speed=3.0)))
        start, k = start + 20, k + 1
    return Scene("many_crossings", "a steady stream both ways", Line(10, 90, 310, 90), tuple(movers), frames)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scene, Path]:
    scene = many_crossings()
    return scene, render(scene, tmp_path_factory.mktemp("e2e") / "many.avi")


async def _wait_for(
    condition: Callable[[], Awaitable[bool]], what: str, *, within: float, every: float = 0.1
) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, f"timed out after {within} s waiting for {what}"
        await asyncio.sleep(every)


class Server:
    """``camcount serve`` on a fixed port; stopped and started again on the same port."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log_path = env, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    async def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: ASYNC220 (a server for the whole test)
            [CAMCOUNT, "serve", "--port", str(self.port)], env=self.env, stdout=self._log, stderr=self._log
        )
        process = self.process

        async def ready() -> bool:
            assert process.poll() is None, f"camcount serve exited: {self.log_path.read_text()[-2000:]}"
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(f"{self.url}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await _wait_for(ready, "camcount serve to be ready", within=40, every=0.2)

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # graceful: requests in flight finish, then the port closes
            await asyncio.to_thread(self.process.wait, 20)
        if self._log is not None:
            self._log.close()
        self.process = self._log = None


@dataclass
class Setup:
    server: Server
    http: httpx.AsyncClient  # owner's token, on the server's URL
    slug: str
    camera_id: int
    key: str
    tmp: Path

    def worker(self, video: Path, name: str) -> subprocess.Popen[bytes]:
        """``camcount edge run`` without --line: line, detector, anchor and interval come from the server."""
        args = [CAMCOUNT, "edge", "run", "--source", str(video), "--api", self.server.url,
                "--tenant", self.slug, "--camera-id", str(self.camera_id), "--key", self.key,
                "--spool", str(self.tmp / "spool.sqlite"), "--batch-size", str(BATCH),
                "--start-time", START.isoformat()]  # fmt: skip
        out = (self.tmp / f"{name}.log").open("wb")
        try:
            return subprocess.Popen(args, env=self.server.env, stdout=out, stderr=out)
        finally:
            out.close()  # the child holds its own copy

    def worker_log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    async def events(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"camera_id": self.camera_id, "limit": 1000}
        for _ in range(100):  # bounded: a few pages at most
            response = await self.http.get(f"/t/{self.slug}/events", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            items += body["items"]
            if body["next_cursor"] is None:
                return items
            params["cursor"] = body["next_cursor"]
        raise AssertionError("too many pages of events")

    def spool_attempted_pending(self) -> bool:
        """A still-pending event has been sent at least once: the worker met the outage."""
        with closing(sqlite3.connect(self.tmp / "spool.sqlite", timeout=5)) as conn:
            (n,) = conn.execute(
                "SELECT count(*) FROM events WHERE status = 'pending' AND attempts > 0"
            ).fetchone()
        return int(n) > 0


@pytest.fixture
async def setup(
    placement: str, env_for_cli: dict[str, str], db: Database, make_tenant: TenantFactory, tmp_path: Path
) -> AsyncIterator[Setup]:
    tenant = await make_tenant(placement)
    request = UserRequest.parse(
        username="owner", email="owner@example.com", role=Role.OWNER, password=PASSWORD
    )
    await create_user(db, tenant, request, actor="test")
    server = Server(env_for_cli, free_port(), tmp_path / "serve.log")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            slug = tenant.slug
            login = await http.post(f"/t/{slug}/auth/token", data={"username": "owner", "password": PASSWORD})
            assert login.status_code == 200, login.text
            http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
            site = await http.post(f"/t/{slug}/sites", json={"name": "Entrance"})
            assert site.status_code == 201, site.text
            config = {"line": [10, 90, 310, 90], "detector": "motion", "anchor": "bottom_center",
                      "object_class": "person", "interval_seconds": INTERVAL}  # fmt: skip
            camera = await http.post(
                f"/t/{slug}/cameras", json={"site_id": site.json()["id"], "name": "Door", "config": config}
            )
            assert camera.status_code == 201, camera.text
            assert camera.json()["last_delivery_at"] is None
            key = await http.post(f"/t/{slug}/keys", json={"name": "edge", "camera_id": camera.json()["id"]})
            assert key.status_code == 201, key.text
            yield Setup(server, http, slug, int(camera.json()["id"]), str(key.json()["key"]), tmp_path)
    finally:
        await server.stop()


async def _wait_until_some_stored(setup: Setup, worker: subprocess.Popen[bytes], name: str) -> int:
    """Poll until the server holds a few of the video's events; the worker must still be running."""
    stored = 0

    async def some() -> bool:
        nonlocal stored
        assert worker.poll() is None, f"the worker finished before the interruption: {setup.worker_log(name)}"
        stored = len(await setup.events())
        return stored >= 3

    await _wait_for(some, "the first events to arrive", within=40)
    return stored


async def _wait_for_exit(worker: subprocess.Popen[bytes], within: float) -> int:
    try:
        return await asyncio.to_thread(worker.wait, within)
    except subprocess.TimeoutExpired:
        worker.kill()
        await asyncio.to_thread(worker.wait, 10)
        raise


async def _assert_exactly_once(setup: Setup, scene: Scene, stored_at_interruption: int) -> None:
    expected = scene.expected()
    assert expected["in"] > 10 and expected["out"] > 5  # the scene is worth the trouble
    events = await setup.events()
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids)), "an event is stored twice"
    assert len(events) > stored_at_interruption, "no event arrived after the interruption"
    assert all(e["camera_id"] == setup.camera_id and e["object_class"] == "person" for e in events)
    video_end = START + timedelta(seconds=scene.frames / scene.fps)
    assert all(START <= datetime.fromisoformat(e["occurred_at"]) < video_end for e in events)
    by_type: dict[str, int] = {}
    for e in events:
        by_type[e["count_type"]] = by_type.get(e["count_type"], 0) + e["count_value"]
    assert by_type == expected
    # One event per interval, direction and class, and the intervals are short: many events.
    assert len(events) >= max(expected.values()) // 2

    counts = await setup.http.get(
        f"/t/{setup.slug}/counts",
        params={"from": START.isoformat(), "to": (START + timedelta(hours=1)).isoformat(),
                "bucket": "hour", "camera_id": setup.camera_id},
    )  # fmt: skip
    assert counts.status_code == 200, counts.text
    totals: dict[str, int] = {}
    for item in counts.json()["items"]:
        for count_type, value in item["counts"].items():
            totals[count_type] = totals.get(count_type, 0) + value
    assert totals == expected  # the rollups: exact, nothing added twice

    camera = await setup.http.get(f"/t/{setup.slug}/cameras/{setup.camera_id}")
    assert camera.status_code == 200, camera.text
    last = camera.json()["last_delivery_at"]
    assert last is not None
    assert datetime.now(UTC) - datetime.fromisoformat(last) < timedelta(minutes=5)


async def test_counts_arrive_exactly_once_when_the_server_stops_halfway_and_restarts(
    setup: Setup, video: tuple[Scene, Path]
) -> None:
    scene, path = video
    worker = setup.worker(path, "worker")
    try:
        stored = await _wait_until_some_stored(setup, worker, "worker")
        await setup.server.stop()
        # The worker keeps counting into the spool and fails to deliver: wait until it has tried.
        await _wait_for(
            lambda: asyncio.to_thread(setup.spool_attempted_pending), "a failed delivery", within=30
        )
        assert worker.poll() is None, setup.worker_log("worker")
        await setup.server.start()
        code = await _wait_for_exit(worker, 90)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    log = setup.worker_log("worker")
    assert code == 0, log
    assert "delivery failed" in log  # it met the stopped server and retried
    await _assert_exactly_once(setup, scene, stored)


async def test_counts_arrive_exactly_once_when_the_worker_is_killed_and_restarted(
    setup: Setup, video: tuple[Scene, Path]
) -> None:
    scene, path = video
    first = setup.worker(path, "first")
    try:
        stored = await _wait_until_some_stored(setup, first, "first")
        first.send_signal(signal.SIGKILL)
        assert await _wait_for_exit(first, 10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    second = setup.worker(path, "second")  # same spool, same file, same start time
    try:
        code = await _wait_for_exit(second, 90)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(10)
    assert code == 0, setup.worker_log("second")
    await _assert_exactly_once(setup, scene, stored)
