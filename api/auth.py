"""Who is asking: the web side of access (the token in a request, roles, failed-login limits, redaction).

A request carries a personal access token either as the password of HTTP Basic
(with the user's username; this is how QGIS authenticates) or as
``Authorization: Bearer <token>``. Only the SHA-256 digest of a token is stored.
A valid token is remembered in this process for ``CACHE_TTL`` seconds, so a hot
token costs no query; revoking a token or disabling a user takes effect in other
server processes within that time. The account password is never accepted here:
checking it (PBKDF2) would cost about 100 ms per request. Users, tokens and the access
log are written by the account services, ``gis.accounts.services``. See ``docs/access.md``.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models.functions import Now
from django.http import HttpRequest
from django.utils import timezone

from core.identity import ANONYMOUS, Identity
from core.roles import DEPARTMENT, GRID_WORKER
from gis.accounts.models import AccessToken
from gis.accounts.services import TOKEN_PREFIX, access_changed, ip_address_or_none, token_digest

CACHE_TTL = 30.0  # seconds a valid token is trusted without asking the database again
CACHE_SIZE = 4096  # tokens remembered per process
TOUCH_INTERVAL = 60.0  # last_used_at is written at most this often per token and process
FAILURE_LIMIT = 10  # failed logins per client address, and per username ...
FAILURE_WINDOW = 300  # ... within this many seconds, before every attempt gets 429
FAILURE_KEEP = 86400  # seconds failed logins are kept (for the rate limit and for a look afterwards)

REALM = "Community One Map"  # one protection space: a browser signed in once is signed in everywhere
BASIC_CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'
_BEARER_CHALLENGE = f'Bearer realm="{REALM}", error="invalid_token"'


class AuthError(Exception):
    """Credentials were refused (401) or too many failed (429); ``str(exc)`` tells the client what to do."""

    def __init__(self, message: str, *, status: int = 401, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


# -- the request entry point ------------------------------------------------------


def identity_for_request(request: HttpRequest) -> Identity:
    """No Authorization header -> ANONYMOUS; valid token -> its Identity; otherwise raise AuthError.

    Call it before opening the request's transaction: a failed login is recorded in
    the database, and a rollback around this call would forget it.
    """
    header = request.META.get("HTTP_AUTHORIZATION")
    if not header:
        return ANONYMOUS
    credentials = _parse_authorization(header)
    if credentials.problem is None:
        identity = _cached_identity(credentials)
        if identity is not None:
            return identity
    return _identity_from_database(credentials, remote_addr=client_address(request))


def known_identity(request) -> Identity | None:
    """The caller's identity when this process knows it without the database, else None.

    No credentials is ANONYMOUS; a token this process remembers (and need not mark as
    used just now) is its identity. Anything else — a token not remembered, one due its
    ``last_used_at``, a malformed header — needs :func:`identity_for_request`, which may
    ask the database. The server's event loop uses this to answer without a thread.
    """
    header = request.META.get("HTTP_AUTHORIZATION")
    if not header:
        return ANONYMOUS
    credentials = _parse_authorization(header)
    if credentials.problem is not None:
        return None
    return _cached_identity(credentials, touch=False)


def require_role(request: HttpRequest, roles: frozenset[str], *, what: str) -> Identity:
    """The caller's identity when its role is one of ``roles``; otherwise AuthError (401 unsigned, 403 signed in)."""
    identity = identity_for_request(request)
    if identity.is_anonymous:
        raise AuthError(f"Sign in to open {what}. {_HOW}", status=401, headers={"WWW-Authenticate": BASIC_CHALLENGE})
    if identity.role not in roles:
        allowed = ", ".join(sorted(roles))
        raise AuthError(f"{what} is for the roles {allowed}; you are signed in as {identity.role}.", status=403)
    return identity


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address as the server saw it (REMOTE_ADDR), or None when it is not an address."""
    return ip_address_or_none(request.META.get("REMOTE_ADDR"))


# query parameters whose value is a secret whatever it looks like; any om_ token anywhere is one too
SECRET_PARAMETERS = frozenset({"token", "access_token", "api_key", "apikey", "key", "password", "passwd", "secret",
                               "auth", "authorization", "jwt", "session", "sessionid"})
_TOKEN_TEXT = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_%\-]{8,}")
_SECRET_PAIR = re.compile(r"(?i)(^|[?&;])(" + "|".join(sorted(SECRET_PARAMETERS)) + r")=[^&;]*")
REDACTED = "[redacted]"


def redact_secrets(text: str) -> str:
    """``text`` (a query string, a path, a log line) with every token and secret parameter's value blanked.

    Tokens belong in the Authorization header; a client that put one in a URL is refused,
    and the URL must not keep it in any log.
    """
    if not text:
        return text
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}={REDACTED}", text)
    return _TOKEN_TEXT.sub(TOKEN_PREFIX + REDACTED, text)


def clear_identity_cache() -> None:
    """Forget every remembered token of this process."""
    with _CACHE_LOCK:
        _CACHE.clear()


# -- helpers: parsing the header ---------------------------------------------------


@dataclass(frozen=True)
class _Credentials:
    scheme: str  # "basic" | "bearer" | anything else, lower-cased
    username: str | None = None  # Basic only
    digest: str = ""
    problem: str | None = None  # why the header cannot be a valid credential

    @property
    def challenge(self) -> str:
        return _BEARER_CHALLENGE if self.scheme == "bearer" else BASIC_CHALLENGE


_HOW = (
    "Send a personal access token as the password of HTTP Basic (with your username) "
    "or as 'Authorization: Bearer om_...'."
)
_NEW_TOKEN = "An administrator creates one with: onemap token create USERNAME"


def _parse_authorization(header: str) -> _Credentials:
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer":
        if not value:
            return _Credentials(scheme, problem=f"The Bearer token is empty. {_HOW}")
        return _token_credentials(scheme, None, value)
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _Credentials(scheme, problem="HTTP Basic credentials must be base64 of UTF-8 'username:token'.")
        username, colon, password = decoded.partition(":")
        if not colon or not username:
            return _Credentials(scheme, problem=f"HTTP Basic credentials need a username and a token. {_HOW}")
        return _token_credentials(scheme, username, password)
    return _Credentials(scheme, problem=f"Unsupported authorization scheme {scheme!r}. {_HOW}")


def _token_credentials(scheme: str, username: str | None, token: str) -> _Credentials:
    if not token.startswith(TOKEN_PREFIX):
        return _Credentials(
            scheme,
            username=username,
            problem=(
                "The password must be a personal access token (it starts with 'om_'), not the account "
                f"password, which this server never checks. {_NEW_TOKEN}"
            ),
        )
    return _Credentials(scheme, username=username, digest=token_digest(token))


# -- helpers: the per-process cache ------------------------------------------------


@dataclass
class _Remembered:
    identity: Identity
    valid_until: float  # wall-clock seconds: CACHE_TTL from the lookup, or the token's expiry if sooner
    touched_at: float  # wall-clock seconds when last_used_at was last written by this process


_CACHE: dict[str, _Remembered] = {}
_CACHE_LOCK = threading.Lock()


def _cached_identity(credentials: _Credentials, *, touch: bool = True) -> Identity | None:
    """The remembered identity of these credentials; None when not remembered, or when its use is due to be
    written and ``touch`` is False."""
    entry = _CACHE.get(credentials.digest)
    now = time.time()
    if entry is None or now >= entry.valid_until:
        return None
    if credentials.username is not None and credentials.username != entry.identity.username:
        return None  # checked (and counted as a failure) against the database
    if now - entry.touched_at >= TOUCH_INTERVAL:
        if not touch:
            return None
        entry.touched_at = now
        AccessToken.objects.filter(pk=entry.identity.token_id).update(last_used_at=Now())
    return entry.identity


def _remember(digest: str, identity: Identity, *, expires_at: datetime | None, touched_at: float) -> None:
    now = time.time()
    valid_until = now + CACHE_TTL
    if expires_at is not None:
        valid_until = min(valid_until, expires_at.timestamp())
    with _CACHE_LOCK:
        if len(_CACHE) >= CACHE_SIZE:
            for key in [k for k, v in _CACHE.items() if v.valid_until <= now]:
                del _CACHE[key]
            while len(_CACHE) >= CACHE_SIZE:  # still full of live entries: drop the oldest
                del _CACHE[next(iter(_CACHE))]
        _CACHE[digest] = _Remembered(identity, valid_until, touched_at)


def _forget(matches) -> None:
    with _CACHE_LOCK:
        for key in [k for k, v in _CACHE.items() if matches(v.identity)]:
            del _CACHE[key]


def _forget_changed(sender, *, user_id: int | None = None, token_id: int | None = None, **kwargs) -> None:
    """A user was enabled or disabled, or a token revoked (``gis.accounts.services``): this process forgets it now."""
    if user_id is not None:
        _forget(lambda identity: identity.user_id == user_id)
    if token_id is not None:
        _forget(lambda identity: identity.token_id == token_id)


# the services sit below the web layer and cannot reach this cache; they say what changed instead
access_changed.connect(_forget_changed, dispatch_uid="api.auth.forget_changed")


# -- helpers: the database path (rate limit, lookup, failures) ---------------------


def _identity_from_database(credentials: _Credentials, *, remote_addr: str | None) -> Identity:
    username_key = credentials.username.lower() if credentials.username else None
    retry_after = _seconds_until_allowed(remote_addr=remote_addr, username_key=username_key)
    if retry_after is not None:
        raise AuthError(
            f"Too many failed logins from this address or for this username; try again in {retry_after} s.",
            status=429,
            headers={"Retry-After": str(retry_after)},
        )
    problem = credentials.problem
    if problem is None:
        identity_or_problem = _identity_for_digest(credentials)
        if isinstance(identity_or_problem, Identity):
            return identity_or_problem
        problem = identity_or_problem
    _record_failure(remote_addr=remote_addr, username_key=username_key)
    raise AuthError(problem, status=401, headers={"WWW-Authenticate": credentials.challenge})


# The FAILURE_LIMIT-th most recent failure inside the window, per key: while it exists the key
# is blocked, until it leaves the window. statement_timestamp(), like the column default, so
# the answer is right inside a long transaction too. Attempts refused with 429 are not recorded, so the
# block ends FAILURE_WINDOW seconds after the failures that caused it.
_BLOCKED_FOR = """
SELECT
    (SELECT ceil(extract(epoch FROM f.at + make_interval(secs => %(window)s) - statement_timestamp()))::int
       FROM login_failures f
      WHERE f.remote_addr = %(addr)s AND f.at > statement_timestamp() - make_interval(secs => %(window)s)
      ORDER BY f.at DESC OFFSET %(skip)s LIMIT 1),
    (SELECT ceil(extract(epoch FROM f.at + make_interval(secs => %(window)s) - statement_timestamp()))::int
       FROM login_failures f
      WHERE f.username = %(username)s AND f.at > statement_timestamp() - make_interval(secs => %(window)s)
      ORDER BY f.at DESC OFFSET %(skip)s LIMIT 1)
"""


def _seconds_until_allowed(*, remote_addr: str | None, username_key: str | None) -> int | None:
    params = {"window": FAILURE_WINDOW, "addr": remote_addr, "username": username_key, "skip": FAILURE_LIMIT - 1}
    with connection.cursor() as cursor:
        cursor.execute(_BLOCKED_FOR, params)
        waits = [w for w in cursor.fetchone() if w is not None]
    return max(1, max(waits)) if waits else None


def _record_failure(*, remote_addr: str | None, username_key: str | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO login_failures (remote_addr, username) VALUES (%s, %s)", [remote_addr, username_key or ""]
        )
        cursor.execute(
            "DELETE FROM login_failures WHERE at < statement_timestamp() - make_interval(secs => %s)", [FAILURE_KEEP]
        )


def _identity_for_digest(credentials: _Credentials) -> Identity | str:
    """The identity the token stands for, or why it is refused."""
    row = (
        AccessToken.objects.filter(digest=credentials.digest)
        .values_list(
            "id", "user_id", "user__username", "user__is_active", "user__access_profile__role",
            "user__access_profile__grid_id", "expires_at", "revoked_at", "last_used_at",
            "user__access_profile__department", "user__grid_worker__id",
        )
        .first()
    )
    if row is None:
        return f"This access token is not known (mistyped, or deleted). {_NEW_TOKEN}"
    (token_id, user_id, username, is_active, role, grid_id, expires_at, revoked_at, last_used_at, department,
     worker_id) = row
    if credentials.username is not None and credentials.username != username:
        return "The username does not match the access token; give the username the token was made for."
    if revoked_at is not None:
        return f"This access token was revoked. {_NEW_TOKEN}"
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        return f"This access token expired at {expires_at.isoformat()}. {_NEW_TOKEN}"
    if not is_active:
        return f"The account {username!r} is disabled; ask an administrator (onemap user enable)."
    if role is None:
        return f"The account {username!r} has no role; an administrator must give it one."
    identity = Identity(role=role, username=username, user_id=user_id, grid_id=grid_id, token_id=token_id,
                        department=(department or None) if role == DEPARTMENT else None,
                        worker_id=worker_id if role == GRID_WORKER else None)
    touched_at = last_used_at.timestamp() if last_used_at else 0.0
    if now.timestamp() - touched_at >= TOUCH_INTERVAL:
        AccessToken.objects.filter(pk=token_id).update(last_used_at=Now())
        touched_at = now.timestamp()
    _remember(credentials.digest, identity, expires_at=expires_at, touched_at=touched_at)
    return identity
