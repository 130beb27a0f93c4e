"""Webhook secrets at rest, and the worker's cache of opened ones (pool/kit/secret_box.py)."""

from __future__ import annotations

import pytest

from pool.kit.errors import ConfigurationError
from pool.kit.secret_box import OpenedSecrets, SecretBox


class CountingBox(SecretBox):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.opened = 0

    def open(self, sealed: str) -> str:
        self.opened += 1
        return super().open(sealed)


def test_a_secret_is_decrypted_once_then_kept() -> None:
    box = CountingBox("a long random key for the tests")
    sealed = box.seal("whsec_one")
    secrets = OpenedSecrets(box)
    assert [secrets.open(sealed) for _ in range(3)] == [b"whsec_one"] * 3
    assert box.opened == 1


def test_a_rotated_secret_is_never_answered_from_the_old_entry() -> None:
    box = CountingBox("a long random key for the tests")
    secrets = OpenedSecrets(box)
    old, new = box.seal("whsec_old"), box.seal("whsec_new")
    assert secrets.open(old) == b"whsec_old"
    assert secrets.open(new) == b"whsec_new"
    assert secrets.open(old) == b"whsec_old"  # still right during the grace period
    assert box.opened == 2


def test_the_cache_stays_bounded() -> None:
    box = CountingBox("a long random key for the tests")
    secrets = OpenedSecrets(box, max_kept=2)
    sealed = [box.seal(f"whsec_{n}") for n in range(5)]
    assert [secrets.open(s) for s in sealed] == [f"whsec_{n}".encode() for n in range(5)]
    assert len(secrets._opened) <= 2


def test_a_wrong_key_is_still_a_configuration_error() -> None:
    sealed = SecretBox("the key it was stored with").seal("whsec_x")
    with pytest.raises(ConfigurationError):
        OpenedSecrets(SecretBox("another key")).open(sealed)
