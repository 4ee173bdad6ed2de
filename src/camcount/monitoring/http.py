"""HTTP middleware: one JSON access-log line and the request metrics for every request.

Pure ASGI (no BaseHTTPMiddleware): it wraps ``send`` to see the status, and reads the route
*template* the router matched (``/t/{slug}/events``, never the raw path, so metric labels stay
bounded; ``<unmatched>`` for a 404 without a route). The request id is the one the request-id
middleware put in the response header. Logged: time, level, request id, tenant slug (from the
path), method, route, path without its query string, status and duration. Never headers, query
strings or bodies, so passwords and tokens cannot reach the log.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from camcount.monitoring import metrics
from camcount.monitoring.logs import log_context

logger = logging.getLogger("camcount.access")
_NO_TENANT = "-"


def route_template(scope: Scope) -> str:
    """The matched route's full template (``/t/{slug}/events``), or ``<unmatched>``.

    FastAPI keeps included routers nested: ``scope["route"]`` is then the inner route with its
    path relative to the router's prefix, and the full template is on the effective route context
    FastAPI stores in the scope (as its telemetry does). Top-level routes have only ``route``.
    """
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) and template else metrics.UNMATCHED_ROUTE


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id: str | None = None

        async def watch(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", ()):
                    if name.lower() == b"x-request-id":
                        request_id = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            slug = (scope.get("path_params") or {}).get("slug")
            tenant = slug if isinstance(slug, str) and slug != _NO_TENANT else None
            method = scope.get("method", "")
            metrics.observe_request(method, route, status, seconds)
            request_id = request_id or (scope.get("state") or {}).get("request_id")
            with log_context(request_id=request_id, tenant=tenant):
                logger.log(
                    logging.WARNING if status >= 500 else logging.INFO,
                    "request",
                    extra={"method": method, "route": route, "path": scope.get("path", ""), "status": status,
                           "duration_ms": round(seconds * 1000, 2)},
                )  # fmt: skip
