"""The JSON log formatter masks secrets in any field, whatever form they are written in."""

from __future__ import annotations

import json
import logging

import pytest

from camcount.monitoring.logs import MASK, JsonFormatter, log_context, redact

SECRET = "s3cr3t-VALUE.xyz"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {SECRET}",
        f"authorization=Basic {SECRET}",
        f"password={SECRET}",
        f'{{"api_key": "{SECRET}"}}',
        f"connecting with token: {SECRET}; retrying",
        f"Cookie: session={SECRET}",
        f"my_client_secret={SECRET}&next=1",
        f"Token {SECRET}",
    ],
)
def test_a_secret_in_any_common_form_is_masked(text: str) -> None:
    masked = redact(text)
    assert SECRET not in masked
    assert MASK in masked


@pytest.mark.parametrize("text", ["GET", "/t/acme/cameras/12", "request", "2026-12-04T10:00:00+00:00", ""])
def test_ordinary_text_is_left_as_it_is(text: str) -> None:
    assert redact(text) == text


def test_a_record_is_one_json_object_with_its_context_and_no_secret() -> None:
    record = logging.makeLogRecord(
        {"name": "camcount.access", "levelno": logging.INFO, "levelname": "INFO", "msg": "login with %s",
         "args": (f"Bearer {SECRET}",), "route": "/t/{slug}/auth/token", "api_key": SECRET}
    )  # fmt: skip
    with log_context(request_id="abc123", tenant="acme"):
        line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert SECRET not in line
    assert entry["request_id"] == "abc123" and entry["tenant"] == "acme"
    assert entry["route"] == "/t/{slug}/auth/token"
    assert entry["api_key"] == MASK  # named like a secret: masked whatever it holds
