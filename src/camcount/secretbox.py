"""Encryption at rest for secret configuration and server URLs (Fernet, with key rotation).

The first key encrypts; every key decrypts, so rotating is: put the new key first, keep the old
ones in ``CAMCOUNT_OLD_SECRET_KEYS`` until ``camcount secrets rotate`` has re-encrypted all values.
With the embedded database and no key set, a key is generated once into ``CAMCOUNT_HOME``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from camcount.config import Settings
from camcount.errors import ConfigurationError

KEY_FILE = "secret.key"


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigurationError(
                "CAMCOUNT_SECRET_KEY is not set, so secret values cannot be encrypted; "
                "create one with `camcount secrets generate-key` and set it in the environment"
            )
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError:
            raise ConfigurationError(
                "a secret key is not a valid Fernet key (32 url-safe base64 bytes)"
            ) from None

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise ConfigurationError(
                "a stored secret cannot be decrypted with the configured keys; "
                "is the old key missing from CAMCOUNT_OLD_SECRET_KEYS?"
            ) from None

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt under the current (first) key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise ConfigurationError("a stored secret cannot be decrypted with the configured keys") from None


def generate_key() -> str:
    return Fernet.generate_key().decode()


def configured_keys(settings: Settings) -> list[str]:
    """The keys in force: the settings' keys, or the embedded installation's generated key."""
    keys: list[str] = []
    if settings.secret_key is not None:
        keys.append(settings.secret_key.get_secret_value())
    elif settings.database_url is None:
        keys.append(_embedded_key(settings.home))
    if settings.old_secret_keys is not None:
        keys.extend(k.strip() for k in settings.old_secret_keys.get_secret_value().split(",") if k.strip())
    return keys


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(configured_keys(settings))


def _embedded_key(home: Path) -> str:
    path = home / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    # Written aside, then linked into place: link fails if another process won the race, and
    # nobody ever reads a half-written key.
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_key() + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()
