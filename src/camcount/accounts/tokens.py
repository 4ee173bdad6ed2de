"""Short-lived signed access tokens (JWT, HS256) carrying tenant, user and role.

The signing key is ``CAMCOUNT_JWT_SECRET`` when set; otherwise it is derived with HKDF-SHA256
from the first secret key (``CAMCOUNT_SECRET_KEY``, or the embedded installation's generated key),
so every API process of one installation agrees without another secret to distribute. With
neither, the API refuses to start (:class:`ConfigurationError`). Rotating the secret key signs
everyone out within ``access_token_minutes`` at the latest; nothing else depends on it.

Verification is cached per token until it expires: the hot path checks a signature once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from camcount.accounts.roles import Role
from camcount.config import Settings
from camcount.errors import AuthenticationFailed, ConfigurationError
from camcount.secretbox import configured_keys

ALGORITHM = "HS256"
TOKEN_TYPE = "access"  # noqa: S105 (a claim value, not a secret)
_HKDF_INFO = b"camcount access tokens v1"
_MAX_CACHED = 50_000


@dataclass(frozen=True)
class AccessClaims:
    tenant_id: int
    user_id: int
    role: Role
    expires_at: float


def signing_key(settings: Settings) -> bytes:
    if settings.jwt_secret is not None:
        value = settings.jwt_secret.get_secret_value().encode()
        if len(value) < 32:
            raise ConfigurationError("CAMCOUNT_JWT_SECRET must be at least 32 characters long")
        return value
    keys = configured_keys(settings)
    if not keys:
        raise ConfigurationError(
            "no key to sign access tokens: set CAMCOUNT_JWT_SECRET (32+ random characters) "
            "or CAMCOUNT_SECRET_KEY"
        )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(keys[0].encode())


class TokenService:
    def __init__(self, key: bytes, minutes: int) -> None:
        self._key = key
        self.lifetime_seconds = minutes * 60
        self._verified: dict[str, AccessClaims] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenService:
        return cls(signing_key(settings), settings.access_token_minutes)

    def issue(self, *, tenant_id: int, user_id: int, role: Role) -> str:
        now = int(time.time())
        claims = {
            "typ": TOKEN_TYPE,
            "tid": tenant_id,
            "sub": str(user_id),
            "role": str(role),
            "iat": now,
            "exp": now + self.lifetime_seconds,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at > now:
                return cached
            del self._verified[token]
            raise AuthenticationFailed("the access token has expired; log in again")
        try:
            data = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub", "tid"]}
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("the access token has expired; log in again") from None
        except jwt.PyJWTError:
            raise AuthenticationFailed("the access token is not valid") from None
        try:
            if data.get("typ") != TOKEN_TYPE:
                raise ValueError
            claims = AccessClaims(int(data["tid"]), int(data["sub"]), Role(data["role"]), float(data["exp"]))
        except (KeyError, TypeError, ValueError):
            raise AuthenticationFailed("the access token is not valid") from None
        if len(self._verified) >= _MAX_CACHED:
            self._verified.clear()
        self._verified[token] = claims
        return claims
