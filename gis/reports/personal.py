"""A resident's phone number at rest: AES-GCM encrypted, with a keyed digest for limits and bans.

The key is the one personal-data key of :mod:`gis.personal` (``ONEMAP_PII_KEY``, or
``.var/pii_key``). The digest (HMAC-SHA256 under a key derived from the same secret) lets
the rate limits and the ban list match a number, a device or an address without keeping it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from gis import personal
from gis.services import ServiceError

_CONTEXT = b"onemap:phone"
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
    return personal.seal(text.encode(), context=_CONTEXT)


def decrypt(blob: bytes) -> str:
    return personal.unseal(blob, context=_CONTEXT).decode()


def digest(kind: str, value: str) -> str:
    """A keyed hash of a phone number, device id or address ('' for an empty value)."""
    if not value:
        return ""
    return hmac.new(_digest_key(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _digest_key() -> bytes:
    return personal.derived_key(b"onemap:digest")
