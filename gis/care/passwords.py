"""Mosquitto's password-file digest (``$7$``: PBKDF2-HMAC-SHA512), made and checked without Django."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# Mosquitto 2.0's own choice for its password file; device passwords are 24 random bytes, so the
# iterations guard nothing a guess could reach, and a check costs well under a millisecond
ITERATIONS = 101
SALT_BYTES = 12


def password_digest(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Mosquitto's ``$7$`` digest of ``password``: PBKDF2-HMAC-SHA512, base64 salt and hash."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    derived = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(derived).decode()}"


def digest_matches(digest: str, password: str) -> bool:
    """Whether ``password`` gives ``digest`` (a ``$7$`` digest; anything else never matches)."""
    parts = digest.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit() or not 1 <= int(parts[2]) <= 1_000_000:
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(password_digest(password, salt=salt, iterations=int(parts[2])), digest)
