"""RFC 9457 problem details: the one shape of every error the API answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:camcount:problem:"


def title_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_dict(
    status: int,
    title: str | None,
    detail: str,
    request_id: str,
    *,
    code: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code if code else "about:blank",
        "title": title or title_for(status),
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    body.update(extra)
    return body


def problem_bytes(status: int, title: str | None, detail: str, request_id: str, **extra: Any) -> bytes:
    return json.dumps(problem_dict(status, title, detail, request_id, **extra)).encode()


def problem_response(
    status: int,
    detail: str,
    request_id: str,
    *,
    title: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = json.dumps(problem_dict(status, title, detail, request_id, code=code, **extra)).encode()
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


PROBLEM_SCHEMA: dict[str, Any] = {
    "description": "Problem details (RFC 9457)",
    "content": {
        PROBLEM_MEDIA_TYPE: {
            "schema": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "request_id": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                        },
                    },
                },
                "required": ["type", "title", "status", "detail", "request_id"],
            }
        }
    },
}
