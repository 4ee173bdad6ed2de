"""camcount.api.protocol: penalised credentials answered before the application; one write per answer.

A real uvicorn server (httptools) runs on a free port in a thread, with a tiny ASGI application that
counts the requests it sees. Credentials are put into the process's penalty box directly; each test
uses its own, so they never meet.
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from camcount.api.protocol import HOLD_BACK_SPREAD, PenaltyAwareHttpToolsProtocol
from camcount.errors import TooManyRequests
from camcount.limits.penalty import PENALTIES, PenaltyBox

SECONDS = PENALTIES.seconds


class CountingApp:
    """Answers 200 "ok" and counts what reached it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        self.seen.append(f"{scope['method']} {scope['path']}")
        if scope["path"] == "/stream":  # chunked: no content-length, several body messages
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for part in (b"one,", b"two,", b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, CountingApp]]:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = CountingApp()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=PenaltyAwareHttpToolsProtocol,
        log_level="warning",
        lifespan="off",
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield port, app
    running.should_exit = True
    thread.join(timeout=10)


def penalise() -> bytes:
    """A fresh credential, refused from now on for one penalty."""
    credential = f"Bearer ck_{secrets.token_hex(8)}".encode()
    refusal = TooManyRequests(
        "rate limit exceeded: 5 requests per second", code="rate-limited", retry_after=1
    )
    PENALTIES.remember(credential, refusal, "/t/{slug}/sites", rate=1)
    return credential


def request(
    conn: http.client.HTTPConnection, credential: bytes, method: str = "GET", body: bytes | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    conn.request(method, "/t/x/sites", body=body, headers={"Authorization": credential.decode()})
    response = conn.getresponse()
    return response, response.read()


def test_a_penalised_credential_is_answered_before_the_application(server: tuple[int, CountingApp]) -> None:
    port, app = server
    credential = penalise()
    before = len(app.seen)
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) as conn:
        response, body = request(conn, credential)
    assert response.status == 429
    assert response.getheader("Retry-After") == "1"
    assert response.getheader("Content-Type") == "application/problem+json"
    assert response.getheader("Date") is not None  # uvicorn's default headers are kept
    problem = json.loads(body)
    assert problem["status"] == 429
    assert problem["detail"] == "rate limit exceeded: 5 requests per second"
    assert len(app.seen) == before  # the application never saw it


def test_other_credentials_pass_while_one_is_penalised(server: tuple[int, CountingApp]) -> None:
    port, app = server
    penalise()
    before = len(app.seen)
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) as conn:
        response, body = request(conn, b"Bearer someone-else")
        assert (response.status, body) == (200, b"ok")
        response, body = request(conn, b"")  # no credential at all
        assert response.status == 200
    assert len(app.seen) == before + 2


def test_the_connection_is_held_back_then_serves_again_after_the_penalty(
    server: tuple[int, CountingApp],
) -> None:
    port, _ = server
    credential = penalise()
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) as conn:
        refused_at = time.monotonic()
        assert request(conn, credential)[0].status == 429
        # The next request on this connection is read only once the penalty is over: by then the
        # credential is no longer penalised, so the application answers it.
        response, body = request(conn, credential)
        waited = time.monotonic() - refused_at
        assert (response.status, body) == (200, b"ok")
        assert SECONDS * 0.9 <= waited <= SECONDS * (1 + HOLD_BACK_SPREAD) + 1.0
        assert request(conn, credential)[1] == b"ok"  # keep-alive goes on as usual


def test_a_refused_request_body_is_discarded_and_head_gets_no_body(server: tuple[int, CountingApp]) -> None:
    port, _ = server
    credential = penalise()
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) as conn:
        response, body = request(conn, credential, "POST", body=b'{"events": []}' * 1000)
        assert response.status == 429 and body
        response, body = request(conn, b"Bearer other", "POST", body=b"x" * 10)
        assert (response.status, body) == (200, b"ok")  # the refused body did not leak into this one
    credential = penalise()
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) as conn:
        response, body = request(conn, credential, "HEAD")
        assert response.status == 429
        assert body == b""


def test_connection_close_is_honoured(server: tuple[int, CountingApp]) -> None:
    port, _ = server
    credential = penalise()
    with closing(socket.create_connection(("127.0.0.1", port), timeout=5)) as sock:
        sock.sendall(
            b"GET /t/x/sites HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: "
            + credential
            + b"\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):  # ends when the server closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 429 ")
    assert b"\r\nconnection: close\r\n" in answer.lower()


def test_the_box_forgets_a_credential_when_its_penalty_is_over() -> None:
    box = PenaltyBox(seconds=0.05)
    refusal = TooManyRequests("slow down", code="rate-limited", retry_after=1)
    box.remember(b"Bearer a", refusal, "/r", rate=1)
    assert box.refusal_for([(b"host", b"x"), (b"authorization", b"Bearer a")]) is not None
    assert box.refusal_for([(b"authorization", b"Bearer b")]) is None
    time.sleep(0.06)
    assert box.refusal(b"Bearer a") is None
    assert not box  # the expired entry is gone


def test_a_full_box_keeps_its_live_penalties() -> None:
    box = PenaltyBox(seconds=10, max_entries=2)
    refusal = TooManyRequests("slow down", code="rate-limited", retry_after=10)
    for name in (b"a", b"b", b"c"):
        box.remember(name, refusal, "/r", rate=1)
    assert box.refusal(b"a") is not None and box.refusal(b"b") is not None
    assert box.refusal(b"c") is None  # refused by the rate limit itself, only not from memory


def test_a_flooding_credential_is_let_through_at_its_rate_and_stays_penalised_while_it_floods() -> None:
    box = PenaltyBox(seconds=0.1)
    box.remember(b"k", TooManyRequests("slow down", code="rate-limited", retry_after=1), "/r", rate=10)
    passed, refused = 0, 0
    started = time.monotonic()
    while time.monotonic() - started < 0.55:  # a flood: a request every 5 ms for 550 ms
        if box.refusal(b"k") is None:
            passed += 1
        else:
            refused += 1
        time.sleep(0.005)
    # One request per 100 ms went on to the rate limiter, evenly; the rest were answered from
    # memory, and the penalty outlived its first 100 ms because the flood went on.
    assert 4 <= passed <= 6
    assert refused >= 30
    time.sleep(0.12)  # the flood stops: the entry goes
    assert box.refusal(b"k") is None
    assert not box


def test_answers_leave_whole_for_every_kind_of_response(server: tuple[int, CountingApp]) -> None:
    port, _ = server
    with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) as conn:
        for _ in range(3):  # keep-alive: the held head never leaks into the next answer
            conn.request("GET", "/stream")
            streamed = conn.getresponse()
            assert (streamed.status, streamed.read()) == (200, b"one,two,three")
            conn.request("HEAD", "/plain")  # no body write at all: the head is written at the end
            head = conn.getresponse()
            assert (head.status, head.getheader("content-length"), head.read()) == (200, "2", b"")
            conn.request("GET", "/plain")
            plain = conn.getresponse()
            assert (plain.status, plain.read()) == (200, b"ok")


def test_a_client_waiting_for_100_continue_gets_it_before_the_answer(server: tuple[int, CountingApp]) -> None:
    port, _ = server
    with closing(socket.create_connection(("127.0.0.1", port), timeout=5)) as sock:
        sock.sendall(b"POST /plain HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        answer = b""
        while not answer.endswith(b"ok"):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
