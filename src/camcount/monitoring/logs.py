"""Structured logs: one JSON object per line, tagged with the request, tenant and job.

The standard library's ``logging`` with a JSON formatter (structlog is not a dependency).
Context (request id, tenant slug, job) lives in a context variable set by the middleware and the
scheduler, so every line written while handling a request or a job carries it, including lines
from code that knows nothing about requests.

Secrets never reach the output: the access log records the route template and the path without
its query string, never headers or bodies; and every string that leaves the formatter is passed
through :func:`redact`, which masks ``password=...``, ``token: ...``, ``Bearer ...`` and similar
forms, and any extra field whose name says it is a secret.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

MASK = "[redacted]"
_SECRET_NAME = re.compile(r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|authorization|cookie|credential)",
                          re.IGNORECASE)  # fmt: skip
_SECRET_VALUE_PATTERNS = (
    # An Authorization scheme and its credential first: "Authorization: Bearer x" must lose x, not
    # only the word "Bearer" (which is what the key=value pattern alone would mask).
    re.compile(r"(?P<key>\b(?:Bearer|Basic|Token)\s+)(?P<value>[A-Za-z0-9._~+/=-]+)", re.IGNORECASE),
    # key=value, key: value, "key": "value" for secret-looking keys
    re.compile(
        r"""(?P<key>["']?[\w.-]*(?:pass(?:word|wd|phrase)?|secret|token|api[_-]?key|authorization|cookie)"""
        r"""[\w.-]*["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,;&}]+)""",
        re.IGNORECASE,
    ),
)
# Every match of the patterns above contains one of these words, so a string without any of them
# is returned as it is, without running the substitutions (most log fields: the hot path).
_MAYBE_SECRET = re.compile(r"pass|secret|token|api[_-]?key|authorization|cookie|bearer|basic", re.IGNORECASE)
# Context fields, in output order, and the reserved LogRecord attributes not to copy as extras.
CONTEXT_FIELDS = ("request_id", "tenant", "job")
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "camcount_log_context", default=_EMPTY
)


def redact(text: str) -> str:
    """Mask secret values written as ``name=value``, ``name: value`` or an Authorization scheme."""
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern in _SECRET_VALUE_PATTERNS:
        text = pattern.sub(lambda m: f"{m.group('key')}{MASK}", text)
    return text


def _clean(value: Any, name: str = "") -> Any:
    if name and _SECRET_NAME.search(name):
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (request_id, tenant, job, ...) to every log line written inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context (e.g. the tenant once the route has resolved it)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def current_context() -> Mapping[str, Any]:
    return _context.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, context, then extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get()
        for name in CONTEXT_FIELDS:
            if name in context:
                entry[name] = context[name]
        for name, value in context.items():
            entry.setdefault(name, value)
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        cleaned = {key: _clean(value, key if key not in ("message", "logger", "level") else "")
                   for key, value in entry.items()}  # fmt: skip
        return json.dumps(cleaned, default=str, ensure_ascii=False)


_HANDLER_NAME = "camcount-json"


class _CurrentStderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send camcount's (and uvicorn's) logs to ``stream`` (stderr) as JSON lines. Idempotent."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    handler: logging.StreamHandler[TextIO] = (
        logging.StreamHandler(stream) if stream is not None else _CurrentStderrHandler()
    )
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # camcount writes its own access log (camcount.access) with the request id and tenant.
    logging.getLogger("uvicorn.access").disabled = True
    # The embedded server narrates every start and stop at INFO; its warnings still show.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    return handler
