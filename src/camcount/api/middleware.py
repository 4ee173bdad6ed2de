"""Pure ASGI middleware (cheap on the hot path): request ids, body size, tenant-less paths.

- Request id: a sane incoming ``X-Request-ID`` (1-64 of ``[A-Za-z0-9._-]``) is kept, anything else
  is replaced by a new one; it is echoed in the response header, put in every problem body and
  tagged on every log record of the request (see :data:`request_id_var`).
- Body size: a request announcing or sending more than ``max_body_bytes`` gets 413.
- Tenant-less paths: a tenant route requested without ``/t/{slug}`` (``GET /sites`` on
  ``acme.example.com``, or with ``X-Tenant``) is routed as ``/t/-/sites``; ``-`` is never a slug,
  and the resolver then finds the tenant from the host, the header or the credential.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from camcount.api.problems import problem_bytes
from camcount.db.scope import statement_timeout_ms

request_id_var: ContextVar[str] = ContextVar("camcount_request_id", default="-")

_SANE_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
NO_SLUG = "-"
# First path segments that are not tenant routes.
_UNPREFIXED = ("t", "admin", "healthz", "readyz", "docs", "redoc", "openapi.json", "bench", "metrics")


def new_request_id() -> str:
    return secrets.token_hex(8)


class RequestIdLogFilter(logging.Filter):
    """Adds ``request_id`` to every record so formats may use ``%(request_id)s``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class _BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    """Per request: its id, its body limit, and the time limit of its SQL statements."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, statement_timeout_ms: int = 0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.statement_timeout_ms = statement_timeout_ms or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        content_length = -1
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _SANE_ID.fullmatch(value):
                request_id = value.decode()
            elif name == b"content-length":
                content_length = int(value) if value.isdigit() else -1
        if not request_id:
            request_id = new_request_id()
        token = request_id_var.set(request_id)
        timeout_token = statement_timeout_ms.set(self.statement_timeout_ms)
        scope.setdefault("state", {})["request_id"] = request_id
        _route_tenantless(scope)
        header = (b"x-request-id", request_id.encode())
        try:
            if content_length > self.max_body_bytes:
                await _send_too_large(send, request_id, self.max_body_bytes)
                return
            started = False

            async def send_with_id(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    message["headers"] = [*message.get("headers", ()), header]
                await send(message)

            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise _BodyTooLarge
                return message

            try:
                await self.app(scope, limited_receive, send_with_id)
            except _BodyTooLarge:
                if not started:
                    await _send_too_large(send, request_id, self.max_body_bytes)
        finally:
            statement_timeout_ms.reset(timeout_token)
            request_id_var.reset(token)


def _route_tenantless(scope: dict[str, Any] | Scope) -> None:
    path: str = scope["path"]
    first = path[1:].split("/", 1)[0]
    if first and first not in _UNPREFIXED:
        scope["path"] = f"/t/{NO_SLUG}{path}"
        scope["raw_path"] = scope["path"].encode()


async def _send_too_large(send: Send, request_id: str, limit: int) -> None:
    body = problem_bytes(
        413, "Content Too Large", f"the request body exceeds the limit of {limit} bytes", request_id
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
