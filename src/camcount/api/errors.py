"""Every error as problem+json (RFC 9457), with the request id, and never an internal detail.

camcount's own errors carry messages written to be shown (see :mod:`camcount.errors`). A database
that is briefly out of reach or busy (connection lost or refused, no pooled connection in time,
a statement cancelled, a deadlock or serialization failure, a prepared plan a migration just
invalidated) is a 503 with ``Retry-After``: the request may be sent again. Anything
else becomes a generic 500 whose details go only to the log, tagged with the request id.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg import errors as pg_errors
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from camcount.api.middleware import request_id_var
from camcount.api.problems import problem_response
from camcount.db.scope import PLAN_CHANGED
from camcount.errors import (
    AmbiguousTenant,
    AuthenticationFailed,
    CamcountError,
    ConfigurationError,
    Conflict,
    InsufficientStorage,
    InvalidInput,
    LimitReached,
    NotFound,
    PermissionDenied,
    TenantSuspended,
    TooManyRequests,
)

log = logging.getLogger("camcount.api")


def _request_id(request: Request) -> str:
    state_id = getattr(request.state, "request_id", None)
    return str(state_id) if state_id else request_id_var.get()


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def camcount_error_response(exc: CamcountError, request_id: str) -> Response:
    if isinstance(exc, InvalidInput):
        return problem_response(
            422, str(exc), request_id, code="invalid-input",
            errors=[{"field": exc.field, "message": exc.problem}],
        )  # fmt: skip
    if isinstance(exc, NotFound):
        return problem_response(404, str(exc), request_id, code="not-found")
    if isinstance(exc, LimitReached):
        return problem_response(
            409, str(exc), request_id, code="limit-reached",
            resource=exc.resource, used=exc.used, limit=exc.limit,
        )  # fmt: skip
    if isinstance(exc, Conflict):
        return problem_response(409, str(exc), request_id, code="conflict")
    if isinstance(exc, AuthenticationFailed):
        return problem_response(
            401, str(exc), request_id, code="unauthenticated", headers={"WWW-Authenticate": "Bearer"}
        )
    if isinstance(exc, TenantSuspended):
        return problem_response(403, str(exc), request_id, code="tenant-suspended")
    if isinstance(exc, PermissionDenied):
        return problem_response(403, str(exc), request_id, code="forbidden")
    if isinstance(exc, AmbiguousTenant):
        return problem_response(400, str(exc), request_id, code="ambiguous-tenant")
    if isinstance(exc, TooManyRequests):
        return problem_response(429, str(exc), request_id, code=exc.code, headers=exc.headers)
    if isinstance(exc, InsufficientStorage):
        return problem_response(507, str(exc), request_id, code="storage-limit-reached")
    if isinstance(exc, ConfigurationError):
        log.error("configuration error: %s", exc)
        return problem_response(503, "the service is not configured for this request", request_id)
    return problem_response(400, str(exc), request_id)


async def _camcount_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CamcountError)
    return camcount_error_response(exc, _request_id(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such route"
    elif exc.status_code == 405:
        detail = f"method {request.method} is not allowed here"
    return problem_response(exc.status_code, detail, _request_id(request), headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_path(err.get("loc", ())), "message": str(err.get("msg", "invalid"))}
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"field": "request", "message": "invalid"}
    detail = f"{first['field']}: {first['message']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    return problem_response(422, detail, _request_id(request), code="invalid-input", errors=errors)


async def _database_error(request: Request, exc: Exception) -> Response:
    """A constraint the validators missed: a 4xx without the SQL, logged for a fix."""
    request_id = _request_id(request)
    log.warning("database rejected a request [%s]: %s: %s", request_id, type(exc).__name__, exc)
    if isinstance(exc, pg_errors.IntegrityError):
        return problem_response(409, "the request conflicts with existing data", request_id, code="conflict")
    return problem_response(422, "a value is out of range or malformed", request_id, code="invalid-input")


RETRY_AFTER_SECONDS = 1


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    """A transient database failure: the client may send the request again.

    As after any network failure, a connection lost during COMMIT leaves the outcome unknown to
    the server too; a retried event batch is idempotent, a retried create may meet a 409.
    """
    if isinstance(exc, pg_errors.FeatureNotSupported) and exc.diag.message_primary != PLAN_CHANGED:
        return await _unexpected(request, exc)
    request_id = _request_id(request)
    log.warning("database unavailable for a request [%s]: %s: %s", request_id, type(exc).__name__, exc)
    return problem_response(
        503,
        "the service is briefly unable to reach its database; retry the request",
        request_id,
        code="temporarily-unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    request_id = _request_id(request)
    log.error("unhandled error [%s] %s %s", request_id, request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        "an internal error occurred; quote the request id when reporting it",
        request_id,
        headers={"X-Request-ID": request_id},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CamcountError, _camcount_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(pg_errors.IntegrityError, _database_error)
    app.add_exception_handler(pg_errors.DataError, _database_error)
    # OperationalError covers lost and refused connections, pool timeouts, cancelled statements,
    # deadlocks and serialization failures; a program limit (SQLSTATE class 54) is a bug instead.
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable)
    app.add_exception_handler(pg_errors.FeatureNotSupported, _database_unavailable)
    app.add_exception_handler(pg_errors.ProgramLimitExceeded, _unexpected)
    app.add_exception_handler(Exception, _unexpected)
