"""Opaque cursors for keyset pagination: base64url of a small JSON object, validated on the way in.

Lists answer ``{"items": [...], "next_cursor": "..."}``; ``next_cursor`` is null on the last page.
A cursor is not signed: it only says where to continue, and RLS confines every page to the tenant.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from camcount.errors import InvalidInput

T = TypeVar("T")
R = TypeVar("R")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_MAX_CURSOR = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


CursorParam = Annotated[
    str | None, Query(max_length=_MAX_CURSOR, description="next_cursor of the previous page")
]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id to continue after (0 = from the start), or InvalidInput naming the cursor."""
    if cursor is None or cursor == "":
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data: Any = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor", "is not a cursor returned by this list") from None
    after = data.get("after") if isinstance(data, dict) else None
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**63:
        raise InvalidInput("cursor", "is not a cursor returned by this list")
    return after


def page_of(items: Sequence[T], limit: int, key: Any = lambda item: item.id) -> tuple[list[T], str | None]:
    """Items fetched with ``limit + 1``: the page, and the cursor when there is more."""
    if len(items) > limit:
        page = list(items[:limit])
        return page, encode_cursor(int(key(page[-1])))
    return list(items), None


def page(rows: Sequence[R], limit: int, shape: Callable[[R], T]) -> Page[T]:
    """The answer to a list fetched with ``limit + 1``: its first ``limit`` rows shaped, and the cursor."""
    items, next_cursor = page_of(rows, limit)
    return Page[T](items=[shape(item) for item in items], next_cursor=next_cursor)
