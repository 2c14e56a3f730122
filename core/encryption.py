"""Secrets the platform must keep in its database but never as they are (staff TOTP keys),
sealed with AES-256-GCM under a key that is not in the database (`DATA_ENCRYPTION_KEY`), so
a leaked database row, dump or backup reveals nothing by itself.

`DATA_ENCRYPTION_KEY` lists keys as `id:key`, comma-separated, the current one first; a key
is 32 random bytes in base64url (`python -c "import secrets; print(secrets.token_urlsafe(32))"`).
New values are sealed with the current key; every listed key still opens what it sealed. To
rotate: put a new key first and keep the old one after it until every value was sealed again
(`DataKeys.is_current`; values are sealed again as they are used, or by a migration).

A sealed value reads `id$` then base64url of nonce and ciphertext. The associated data names
what the value is for (e.g. `second_factor:42`): a value copied into another row does not
open there.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce, random for each value
_SEPARATOR = "$"


class UnreadableSecret(ValueError):
    """A sealed value no listed key opens (a dropped key, a value moved or altered)."""


def _decoded(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def new_key_spec(key_id: str) -> str:
    """A fresh `id:key` entry for DATA_ENCRYPTION_KEY."""
    return f"{key_id}:{_encoded(secrets.token_bytes(KEY_BYTES))}"


@dataclass(frozen=True)
class DataKeys:
    """The listed keys by id, and which one seals new values."""

    keys: dict[str, AESGCM]
    current: str

    @classmethod
    def parse(cls, spec: str) -> DataKeys:
        keys: dict[str, AESGCM] = {}
        for entry in (part.strip() for part in spec.split(",")):
            key_id, _, text = entry.partition(":")
            try:
                raw = _decoded(text.strip())
            except (binascii.Error, ValueError):
                raw = b""
            if not key_id.strip().isalnum() or len(raw) != KEY_BYTES or key_id in keys:
                raise ValueError(
                    "DATA_ENCRYPTION_KEY: use id:key entries, comma-separated, the current "
                    "first, each key 32 random bytes in base64url and each id letters or digits"
                )
            keys[key_id.strip()] = AESGCM(raw)
        return cls(keys, next(iter(keys)))

    def seal(self, plaintext: str, purpose: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self.keys[self.current].encrypt(nonce, plaintext.encode(), purpose.encode())
        return f"{self.current}{_SEPARATOR}{_encoded(nonce + sealed)}"

    def unseal(self, value: str, purpose: str) -> str:
        key_id, _, body = value.partition(_SEPARATOR)
        key = self.keys.get(key_id)
        if key is None or not body:
            raise UnreadableSecret(f"no key {key_id!r} listed in DATA_ENCRYPTION_KEY")
        try:
            raw = _decoded(body)
            return key.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise UnreadableSecret(f"a value sealed with key {key_id!r} does not open") from exc

    def is_current(self, value: str) -> bool:
        return value.partition(_SEPARATOR)[0] == self.current
