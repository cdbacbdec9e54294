"""Personal data at rest: one key (``ONEMAP_PII_KEY``) and AES-GCM sealing bound to what is sealed.

The key is 32 bytes, given in base64 as ``ONEMAP_PII_KEY``; without it, a checkout of its
own makes one once beside the embedded database (``.var/pii_key``, mode 0600), never in
the repository or the database. The key is never logged, never put in a message, and
never stored in a settings object that could be printed.

A sealed value is ``nonce (12 bytes) || ciphertext || tag``. Its *context* (associated
data) names what it belongs to — ``b"onemap:care_subject_private:42"``, ``b"onemap:phone"`` —
so a blob copied onto another record, or decrypted with another key, fails loudly
(:class:`UnreadablePersonalData`) instead of returning garbage.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import settings

KEY_VARIABLE = "ONEMAP_PII_KEY"
KEY_FILE = "pii_key"
# the file the residents' phone numbers were sealed with before there was one key for all personal data
_OLDER_KEY_FILE = "personal_key"
_NONCE_BYTES = 12


class PersonalKeyError(RuntimeError):
    """The personal-data key is missing or malformed (the message names the setting, never the key)."""


class UnreadablePersonalData(PersonalKeyError):
    """A sealed value does not open: another key, another record's blob, or altered bytes."""


def seal(plain: bytes, *, context: bytes) -> bytes:
    """``plain`` encrypted under the personal-data key, bound to ``context``."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(key()).encrypt(nonce, plain, context)


def unseal(blob: bytes, *, context: bytes) -> bytes:
    """The plain bytes of a :func:`seal` result; :class:`UnreadablePersonalData` when it does not open."""
    blob = bytes(blob)
    if len(blob) < _NONCE_BYTES + 16:
        raise UnreadablePersonalData(f"sealed personal data for {context.decode(errors='replace')} is truncated")
    try:
        return AESGCM(key()).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], context)
    except InvalidTag:
        raise UnreadablePersonalData(
            f"sealed personal data for {context.decode(errors='replace')} does not open with this server's key "
            f"({key_source()}): it was sealed with another key, belongs to another record, or was altered"
        ) from None


def derived_key(label: bytes) -> bytes:
    """A sub-key for one purpose (e.g. keyed digests), so the personal-data key itself is used for sealing only."""
    return hmac.new(key(), label, hashlib.sha256).digest()


def key() -> bytes:
    """The 32-byte personal-data key: ``ONEMAP_PII_KEY``, else the file under the var directory (made once)."""
    return _key(os.environ.get(KEY_VARIABLE) or None, settings().var_dir)


def key_source() -> str:
    """Where the key comes from, for messages: the variable's name or the file's path (never the key)."""
    return KEY_VARIABLE if os.environ.get(KEY_VARIABLE) else str(settings().var_dir / KEY_FILE)


@functools.lru_cache(maxsize=8)
def _key(configured: str | None, var_dir: Path) -> bytes:
    if configured is not None:
        return _decoded(configured, KEY_VARIABLE)
    path = var_dir / KEY_FILE
    if not path.exists():
        _make_key_file(path, adopt=var_dir / _OLDER_KEY_FILE)
    return _decoded(path.read_text().strip(), str(path))


def _decoded(text: str, source: str) -> bytes:
    try:
        decoded = base64.b64decode(text, validate=True)
    except ValueError:
        decoded = b""
    if len(decoded) != 32:
        raise PersonalKeyError(f"{source} must hold 32 bytes in base64 (e.g. from `openssl rand -base64 32`)")
    return decoded


def _make_key_file(path: Path, *, adopt: Path) -> None:
    """Write a new key (or link the older key file, so what it sealed still opens); the first process wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if adopt.exists():
        try:
            os.link(adopt, path)
        except FileExistsError:
            pass
        return
    scratch = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(base64.b64encode(secrets.token_bytes(32)).decode())
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(scratch, path)  # atomic: another process that got here first keeps its key, and we read it
        except FileExistsError:
            pass
    finally:
        scratch.unlink()
