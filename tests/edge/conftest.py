"""Fixtures for the edge worker tests: rendered synthetic scenes and a fake tenant API.

The fake API is a real HTTP server on 127.0.0.1 implementing the events contract; it
de-duplicates by (camera_id, event_id) like the real server and can be told to fail.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import pytest

from camcount.edge.scenes import Scene, render, standard_scenes

cv2.setNumThreads(1)

KEY = "ck_test_key"


@pytest.fixture(scope="session")
def scene_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Scene, Path]]:
    folder = tmp_path_factory.mktemp("scenes")
    return {s.name: (s, render(s, folder / f"{s.name}.avi")) for s in standard_scenes()}


@dataclass
class FakeApi:
    """State of the fake server; tests flip ``mode`` and read ``accepted``."""

    tenant: str = "acme"
    mode: str = "ok"  # ok | error500 | slow_down | hang_after_commit | unauthorised | drop
    max_batch: int = 5000
    minimal: bool = False  # honour Prefer: return=minimal as camcount's API does
    reject_types: set[str] = field(default_factory=set)
    accepted: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    requests: int = 0
    duplicates: int = 0
    batches: list[int] = field(default_factory=list)
    camera_config: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    committed: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def totals(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for event in self.accepted.values():
            result[event["count_type"]] = result.get(event["count_type"], 0) + event["count_value"]
        return result


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if api.mode == "unauthorised" or self.headers.get("Authorization") != f"Bearer {KEY}":
                self._reply(401, {"detail": "invalid device key"})
                return False
            return True

        def do_GET(self) -> None:
            if not self._authorised():
                return
            if self.path.startswith(f"/t/{api.tenant}/cameras/"):
                camera_id = int(self.path.rsplit("/", 1)[1])
                self._reply(200, {"id": camera_id, "name": "gate", "config": api.camera_config,
                                  "last_delivery_at": None})  # fmt: skip
            else:
                self._reply(404, {"detail": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with api.lock:
                api.requests += 1
            if not self._authorised():
                return
            if self.path != f"/t/{api.tenant}/events":
                self._reply(404, {"detail": "not found"})
                return
            if api.mode == "error500":
                self._reply(503, {"detail": "maintenance"})
                return
            if api.mode == "slow_down":
                api.mode = "ok"
                self._reply(429, {"detail": "slow down"}, {"Retry-After": "0.2"})
                return
            if api.mode == "unavailable":
                api.mode = "ok"
                self._reply(503, {"detail": "database briefly unavailable"}, {"Retry-After": "0.3"})
                return
            if api.mode == "drop":
                api.mode = "ok"
                self.close_connection = True
                self.connection.shutdown(2)
                return
            events = body["events"]
            if len(events) > api.max_batch:
                self._reply(413, {"detail": "too many events"})
                return
            results = []
            with api.lock:
                api.batches.append(len(events))
                for event in events:
                    key = (int(event["camera_id"]), str(event["event_id"]))
                    if event["count_type"] in api.reject_types:
                        results.append({"event_id": key[1], "status": "rejected", "reason": "unknown type"})
                    elif key in api.accepted:
                        api.duplicates += 1
                        results.append({"event_id": key[1], "status": "duplicate", "reason": None})
                    else:
                        api.accepted[key] = event
                        results.append({"event_id": key[1], "status": "accepted", "reason": None})
            if api.mode == "hang_after_commit":
                # Committed but the answer never arrives in time: the worker gets killed.
                api.committed.set()
                api.release.wait(30)
            counts = {
                s: sum(1 for r in results if r["status"] == s) for s in ("accepted", "duplicate", "rejected")
            }
            if api.minimal and "return=minimal" in self.headers.get("Prefer", ""):
                listed = [r for r in results if r["status"] != "accepted"]
                self._reply(200, {"results": listed, **counts}, {"Preference-Applied": "return=minimal"})
                return
            self._reply(200, {"results": results, **counts})

    return Handler


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api
    api.release.set()
    server.shutdown()
    server.server_close()


def start_fake_api(api: FakeApi, port: int) -> ThreadingHTTPServer:
    """Start (or restart, on a known port) a server for an existing state."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(api))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
