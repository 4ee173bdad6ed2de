"""Errors that camcount's actions raise for callers (CLI, API) to show as they are.

Each message is safe to show to the person who made the request: it names what was wrong and
where, and never another tenant's name, id or existence.
"""

from __future__ import annotations


class CamcountError(Exception):
    """Base for errors a user can act on."""


class InvalidInput(CamcountError):
    """Bad input: the message says which field and why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(CamcountError):
    """Missing, or not yours: the two are never told apart."""


class Conflict(CamcountError):
    """The request contradicts what exists (a taken slug with other settings, a limit reached)."""


class ConfigurationError(CamcountError):
    """camcount itself is not set up for this (no secret key, unknown server, ...)."""


class LimitReached(Conflict):
    """A plan limit would be exceeded; the message names the limit and the current usage."""

    def __init__(self, resource: str, used: int, limit: int) -> None:
        super().__init__(f"limit reached: {resource} {used} of {limit}")
        self.resource = resource
        self.used = used
        self.limit = limit


class AuthenticationFailed(CamcountError):
    """No credential, or one that is malformed, expired, revoked or wrong (HTTP 401)."""


class PermissionDenied(CamcountError):
    """Authenticated, but this role or key may not do this (HTTP 403)."""


class TenantSuspended(PermissionDenied):
    """The tenant exists, is the caller's, and is suspended by the operator (HTTP 403)."""


class AmbiguousTenant(CamcountError):
    """The request names its tenant in several ways that disagree (HTTP 400)."""


class TooManyRequests(CamcountError):
    """A rate limit or a periodic quota says wait (HTTP 429); ``headers`` say how long and why."""

    def __init__(
        self, message: str, *, code: str, retry_after: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after), **(headers or {})}


class InsufficientStorage(CamcountError):
    """The tenant is over its storage limit: ingestion is refused (HTTP 507)."""
