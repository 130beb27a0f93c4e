"""Webhook secrets at rest: encrypted, because they must be readable again to sign.

The key is `ADDRPOOL_SECRET_KEY` (any long random string; it is stretched with SHA-256 into a
Fernet key). The embedded default (SQLite) generates one beside its database file, mode 0600,
the first time it needs one. With PostgreSQL the key must be given: several processes on
several hosts have to share it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from pool.kit.config import Settings
from pool.kit.errors import ConfigurationError
from pool.kit.writer_lock import sqlite_file


class SecretBox:
    def __init__(self, key: str) -> None:
        digest = hashlib.sha256(key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._digest = digest

    def derive(self, purpose: str) -> bytes:
        """A key for another use (signing the checkout's forms), independent of the encryption
        key: HMAC-SHA256 of `purpose` under the stretched secret."""
        return hmac.new(self._digest, purpose.encode(), hashlib.sha256).digest()

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ConfigurationError(
                "a webhook secret cannot be decrypted: ADDRPOOL_SECRET_KEY is not the key it "
                "was stored with"
            ) from exc


class OpenedSecrets:
    """Decrypted secrets kept by their ciphertext, so a delivery does not pay a Fernet check
    and decryption (twice during a rotation) for a secret it opened before. Keyed
    by the sealed text itself, so a rotated secret (a new ciphertext) is never answered from
    the old entry: nothing needs invalidating."""

    def __init__(self, box: SecretBox, max_kept: int = 4096) -> None:
        self._box = box
        self._max_kept = max_kept
        self._opened: dict[str, bytes] = {}

    def open(self, sealed: str) -> bytes:
        opened = self._opened.get(sealed)
        if opened is None:
            opened = self._box.open(sealed).encode()
            if len(self._opened) >= self._max_kept:
                self._opened.clear()  # rotations leave old entries behind; drop them all
            self._opened[sealed] = opened
        return opened


def secret_box(settings: Settings) -> SecretBox:
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value())
    database_file = sqlite_file(settings.database_url)
    if database_file is None:
        raise ConfigurationError(
            "ADDRPOOL_SECRET_KEY is required with PostgreSQL: webhook secrets are encrypted "
            "with it, and every process must share it"
        )
    return SecretBox(_key_beside(database_file))


def key_file_beside(database_file: Path) -> Path:
    """Where the generated key of an SQLite database lives: its file name plus `.secret`."""
    return database_file.with_name(database_file.name + ".secret")


def _key_beside(database_file: Path) -> str:
    key_file = key_file_beside(database_file)
    if not key_file.exists():
        try:
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return key_file.read_text().strip()
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    return key_file.read_text().strip()
