"""Per-(user, environment) login passwords, generated with ``secrets`` and kept encrypted at rest.

The encrypted token lives in the spawner's state (the hub database); the key comes from configuration
(``MYDOCKER_CRYPT_KEY``, one or more comma-separated Fernet keys, the first used to encrypt). Passwords
are never logged: :class:`Credentials` hides the password from ``repr``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class CredentialKeyError(Exception):
    """No usable key to encrypt or decrypt credentials."""


@dataclass(frozen=True)
class Credentials:
    login: str
    password: str = field(repr=False)


def generate_password(length: int = 16) -> str:
    """A random password without look-alike characters (about 92 bits for 16 characters)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def _as_fernet_key(key: str) -> bytes:
    """Accept a Fernet key, or derive one from any other secret string (e.g. a 64-hex JUPYTERHUB_CRYPT_KEY)."""
    raw = key.strip().encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


class CredentialStore:
    def __init__(self, keys: list[str]):
        if not keys:
            raise CredentialKeyError(
                "no credential key: set MYDOCKER_CRYPT_KEY (generate one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            )
        self._fernet = MultiFernet([Fernet(_as_fernet_key(key)) for key in keys])

    @classmethod
    def from_environment(cls, fallback_key_file: str | None = None) -> CredentialStore:
        """Keys from MYDOCKER_CRYPT_KEY, else JUPYTERHUB_CRYPT_KEY, else a key file created on first use."""
        text = os.environ.get("MYDOCKER_CRYPT_KEY") or os.environ.get("JUPYTERHUB_CRYPT_KEY", "")
        keys = [part for part in text.replace(";", ",").split(",") if part.strip()]
        if not keys and fallback_key_file:
            keys = [_read_or_create_key(fallback_key_file)]
        return cls(keys)

    def encrypt(self, credentials: Credentials) -> str:
        return self._fernet.encrypt(f"{credentials.login}\n{credentials.password}".encode()).decode()

    def decrypt(self, token: str) -> Credentials:
        try:
            login, password = self._fernet.decrypt(token.encode()).decode().split("\n", 1)
        except (InvalidToken, ValueError):
            raise CredentialKeyError(
                "stored credentials cannot be decrypted with the configured MYDOCKER_CRYPT_KEY "
                "(was the key changed? keep the old key after the new one in the list)"
            ) from None
        return Credentials(login, password)


def _read_or_create_key(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        key = Fernet.generate_key().decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key
