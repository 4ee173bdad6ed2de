"""Opaque cursors for composite keyset keys (events and counts): base64url of a JSON list.

:mod:`camcount.api.pagination` covers lists keyed by one integer id; events are keyed by
(occurred_at, camera_id, event_id) and counts by (bucket, time zone, group), so their cursors carry
the whole key. A cursor only says where to continue: the query checks its parts, and RLS confines
every page to the tenant whatever a cursor says.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from camcount.errors import InvalidInput

MAX_CURSOR_LENGTH = 600


def encode_key(key: Sequence[Any] | None) -> str | None:
    if key is None:
        return None
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key(cursor: str | None, parts: int) -> list[Any] | None:
    """The key a cursor carries (None = from the start); InvalidInput for anything else."""
    if not cursor:
        return None
    try:
        data: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor", "is not a cursor returned by this list") from None
    if not isinstance(data, list) or len(data) != parts:
        raise InvalidInput("cursor", "is not a cursor returned by this list")
    return data
