"""Validation of tenant identifiers and settings, before anything touches the database.

Every check raises :class:`InvalidInput` naming the field and the rule, and shows at most a short,
printable excerpt of the offending value (a 10 kB string is not echoed back whole).
"""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache

from camcount.errors import InvalidInput

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,48}[a-z0-9]")
LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
CONFIG_KEY_RE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
SERVER_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")

# Slugs that would collide with routes, hosts or schemas of our own.
RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "app", "auth", "control", "dashboard", "default", "docs", "healthz", "internal",
        "login", "metrics", "openapi", "operator", "pooled", "postgres", "public", "readyz", "root",
        "static", "status", "system", "template", "tenant", "tenants", "www",
    }
)  # fmt: skip


def excerpt(value: str, limit: int = 40) -> str:
    """A short, printable rendering of user input for error messages."""
    shown = value if len(value) <= limit else value[:limit] + "…"
    return repr(shown)


def validate_pattern(value: str, pattern: re.Pattern[str], *, field: str, rule: str) -> str:
    """``value`` when ``pattern`` matches all of it; otherwise InvalidInput: its excerpt, then ``rule``."""
    if not pattern.fullmatch(value):
        raise InvalidInput(field, f"{excerpt(value)} {rule}")
    return value


def validate_slug(slug: str) -> str:
    if not 3 <= len(slug) <= 50:
        raise InvalidInput("slug", f"must be 3 to 50 characters long, got {len(slug)}")
    validate_pattern(
        slug,
        SLUG_RE,
        field="slug",
        rule="may contain only lowercase letters, digits and hyphens, and must start and end with a letter or digit",
    )
    if "--" in slug:
        raise InvalidInput("slug", f"{excerpt(slug)} must not contain two hyphens in a row")
    if slug in RESERVED_SLUGS:
        raise InvalidInput("slug", f"{slug!r} is reserved")
    return slug


def validate_name(name: str, field: str = "name") -> str:
    cleaned = name.strip()
    if not 1 <= len(cleaned) <= 200:
        raise InvalidInput(field, "must be 1 to 200 characters long")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise InvalidInput(field, "must not contain control characters")
    return cleaned


def validate_subdomain(subdomain: str) -> str:
    value = subdomain.lower()
    if not LABEL_RE.fullmatch(value):
        raise InvalidInput(
            "subdomain",
            f"{excerpt(subdomain)} is not a DNS label (1 to 63 letters, digits or hyphens, "
            "not starting or ending with a hyphen)",
        )
    return value


def validate_domain(domain: str) -> str:
    value = domain.lower().rstrip(".")
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(LABEL_RE.fullmatch(label) for label in labels):
        raise InvalidInput("domain", f"{excerpt(domain)} is not a valid host name such as counts.example.com")
    if labels[-1].isdigit():
        raise InvalidInput("domain", f"{excerpt(domain)} looks like an IP address; use a host name")
    return value


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(name: str, field: str = "timezone") -> str:
    if name not in _time_zones():
        raise InvalidInput(field, f"{excerpt(name)} is not an IANA time zone such as Europe/Paris")
    return name


def validate_config_key(key: str) -> str:
    return validate_pattern(
        key,
        CONFIG_KEY_RE,
        field="key",
        rule="must start with a lowercase letter and contain only lowercase letters, digits, '_' and '.' "
        "(at most 64 characters)",
    )


def validate_server_name(name: str) -> str:
    return validate_pattern(
        name,
        SERVER_NAME_RE,
        field="server",
        rule="must be 1 to 32 lowercase letters, digits, '_' or '-', starting with a letter",
    )


def validate_choice(value: str, choices: list[str] | tuple[str, ...], field: str) -> str:
    if value not in choices:
        raise InvalidInput(field, f"{excerpt(value)} is not one of {', '.join(choices)}")
    return value
