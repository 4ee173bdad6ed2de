"""Device keys: ``ck_<prefix>_<secret>``, shown once, stored as the prefix and a hash.

- The prefix (12 base62 characters) is public, globally unique, and finds the key: in the control
  plane's ``device_key_directory`` (which tenant) and then in the tenant's ``api_keys`` (which key).
- The secret is 256 random bits. The stored hash is SHA-256 over a domain-separated message,
  compared in constant time. argon2 exists for low-entropy passwords, where slowing guesses is the
  point; against a 256-bit random secret no guessing is possible, and a 50 ms argon2 verification
  per ingestion request would cap a core at about 20 device requests per second. A leaked hash
  does not give the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

from camcount.errors import AuthenticationFailed

KEY_MARK = "ck_"
PREFIX_LENGTH = 12
_ALPHABET = string.ascii_letters + string.digits
_KEY_RE = re.compile(r"ck_([A-Za-z0-9]{8,32})_([A-Za-z0-9_-]{43})")
HASH_SCHEME = "sha256$"


@dataclass(frozen=True)
class NewKey:
    prefix: str
    plaintext: str  # shown once
    key_hash: str


@dataclass(frozen=True)
class PresentedKey:
    prefix: str
    secret: str


def _digest(prefix: str, secret: str) -> str:
    message = f"camcount-device-key:v1:{prefix}:{secret}".encode()
    return HASH_SCHEME + hashlib.sha256(message).hexdigest()


def generate() -> NewKey:
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(32)  # 43 characters
    return NewKey(prefix, f"{KEY_MARK}{prefix}_{secret}", _digest(prefix, secret))


def parse(presented: str) -> PresentedKey:
    match = _KEY_RE.fullmatch(presented)
    if match is None:
        raise AuthenticationFailed("the device key is not valid")
    return PresentedKey(match.group(1), match.group(2))


def matches(key: PresentedKey, stored_hash: str) -> bool:
    return hmac.compare_digest(_digest(key.prefix, key.secret), stored_hash)


def is_device_key(credential: str) -> bool:
    return credential.startswith(KEY_MARK)
