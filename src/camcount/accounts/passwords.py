"""Passwords: argon2id (argon2-cffi defaults), verified off the event loop."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from camcount.errors import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 256


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Compared against when the user does not exist, so both cases take the same time.
    return _hasher().hash("camcount-no-such-user")


def validate_password(password: str) -> str:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput("password", f"must be {MIN_LENGTH} to {MAX_LENGTH} characters long")
    if "\x00" in password:
        raise InvalidInput("password", "must not contain NUL characters")
    return password


async def hash_password(password: str) -> str:
    validate_password(password)
    return await asyncio.to_thread(_hasher().hash, password)


def _verify(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; with no stored hash, spends the same time and says False."""
    if len(password) > MAX_LENGTH:
        return False
    return await asyncio.to_thread(_verify, stored_hash, password)
