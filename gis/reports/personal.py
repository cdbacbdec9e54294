"""A resident's phone number at rest: AES-GCM encrypted, with a keyed digest for limits and bans.

The key is ``ONEMAP_PERSONAL_KEY`` (32 bytes, base64) or, for a checkout of its own, a key
made once beside the embedded database (``.var/personal_key``, mode 0600), never in the
repository. The digest (HMAC-SHA256 under a key derived from the same secret) lets the
rate limits and the ban list match a number, a device or an address without keeping it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import settings
from gis.services import ServiceError

_NONCE_BYTES = 12
_PHONE = re.compile(r"^1[3-9]\d{9}$")  # a mainland mobile number


def normalise_phone(raw: str) -> str:
    """The 11 digits of a mainland mobile number ('+86 138-0013-8000' → '13800138000'); else ServiceError."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _PHONE.match(digits):
        raise ServiceError("phone must be a mainland mobile number of 11 digits (e.g. 13800138000), or left empty")
    return digits


def encrypt(text: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(_key()).encrypt(nonce, text.encode(), b"onemap:phone")


def decrypt(blob: bytes) -> str:
    blob = bytes(blob)
    return AESGCM(_key()).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], b"onemap:phone").decode()


def digest(kind: str, value: str) -> str:
    """A keyed hash of a phone number, device id or address ('' for an empty value)."""
    if not value:
        return ""
    return hmac.new(_digest_key(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


@functools.cache
def _key() -> bytes:
    configured = os.environ.get("ONEMAP_PERSONAL_KEY")
    if configured:
        try:
            key = base64.b64decode(configured, validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ServiceError("ONEMAP_PERSONAL_KEY must be 32 bytes in base64 (e.g. from `openssl rand -base64 32`)")
        return key
    path = settings().var_dir / "personal_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = base64.b64encode(secrets.token_bytes(32)).decode()
        scratch = path.with_suffix(f".{os.getpid()}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(made)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(scratch, path)  # the first process to get here wins; the others read its key
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    return base64.b64decode(path.read_text().strip())


@functools.cache
def _digest_key() -> bytes:
    return hmac.new(_key(), b"onemap:digest", hashlib.sha256).digest()
