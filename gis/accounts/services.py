"""Accounts: users with a role, their personal access tokens, and the access log of personal data read.

Keyword-only functions; a refused write raises :class:`gis.services.ServiceError` with a message
that says what to change. A user gets no usable password: the server accepts personal access
tokens only (checking a password with PBKDF2 would cost about 100 ms per request; see
``docs/access.md``), and only a token's SHA-256 digest is stored. Revoking a token or enabling
or disabling a user sends :data:`access_changed`, so a process that remembers tokens forgets them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.functions import Now
from django.dispatch import Signal
from django.utils import timezone

from core.identity import Identity
from core.roles import GRID_WORKER, ROLES
from gis.accounts.models import AccessLogEntry, AccessProfile, AccessToken, IdempotentRequest
from gis.services import ServiceError
from gis.spatial.models import Grid, GridWorker

if TYPE_CHECKING:
    from django.contrib.auth.models import User

TOKEN_PREFIX = "om_"
TOKEN_BYTES = 32

# Sent with ``user_id=`` (a user was enabled or disabled) or ``token_id=`` (a token was revoked) once
# the change is written: a process that remembers tokens (the web layer's cache, api.auth) forgets the
# ones named, so this process refuses them at once. Only caches listen; no domain logic hangs on it.
access_changed = Signal()


# -- users and tokens ----------------------------------------------------------------


@transaction.atomic
def user_create(*, username: str, role: str, grid_code: str | None = None, department: str = "") -> User:
    """Create an active user with a role (a grid worker with their level-3 grid); no password is set.

    An existing user without a role (made by ``createsuperuser``, or left after a city load) is given one.
    """
    User = get_user_model()
    _check_username(username)
    if role not in ROLES:
        raise ServiceError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    grid = _grid_for_role(role=role, grid_code=grid_code)
    department = department.strip()
    if len(department) > 100:
        raise ServiceError(f"department name is {len(department)} characters long; at most 100 are allowed")
    user = User.objects.filter(username=username).first()
    if user is not None and AccessProfile.objects.filter(user=user).exists():
        raise ServiceError(f"user {username!r} already exists with a role; choose another username")
    if user is None:
        user = User(username=username, is_active=True)
        user.set_unusable_password()  # tokens only: the password is never checked (see the module docstring)
        user.save()
    AccessProfile.objects.create(user=user, role=role, grid=grid, department=department)
    return user


@transaction.atomic
def user_set_active(*, username: str, active: bool) -> User:
    """Enable or disable a user; a disabled user's tokens are refused (other processes: within their cache time)."""
    user = _user_named(username)
    if user.is_active != active:
        user.is_active = active
        user.save(update_fields=["is_active"])
    access_changed.send(sender=type(user), user_id=user.pk)
    return user


@transaction.atomic
def grid_worker_bind(*, username: str, worker_code: str) -> GridWorker:
    """Bind a grid worker's user to their ``GridWorker`` (the phone's tasks are the cases dispatched to it).

    The user must be a grid worker of the same level-3 grid; a worker bound to another user is refused.
    """
    user = _user_named(username)
    profile = AccessProfile.objects.filter(user=user).first()
    if profile is None or profile.role != GRID_WORKER:
        raise ServiceError(f"user {username!r} is not a grid worker; only grid workers are bound to a worker")
    worker = GridWorker.objects.select_for_update().filter(code=worker_code).first()
    if worker is None:
        raise ServiceError(f"no grid worker with code {worker_code!r}")
    if worker.grid_id != profile.grid_id:
        raise ServiceError(f"worker {worker.code} works in grid {worker.grid.code}, but user {username!r} is bound "
                           f"to grid {profile.grid.code}; both must be the same level-3 grid")
    if worker.user_id not in (None, user.pk):
        raise ServiceError(f"worker {worker.code} is bound to another user already")
    GridWorker.objects.filter(user=user).exclude(pk=worker.pk).update(user=None)
    worker.user = user
    worker.save(update_fields=["user", "updated_at"])
    return worker


def user_list() -> list[AccessProfile]:
    """Every user with a role, with their grid, ordered by username."""
    return list(AccessProfile.objects.select_related("user", "grid").order_by("user__username"))


@transaction.atomic
def token_create(*, username: str, name: str, expires_at: datetime | None = None) -> tuple[AccessToken, str]:
    """Returns the row and the plaintext token (shown once, never stored)."""
    user = _user_named(username)
    if not user.is_active:
        raise ServiceError(f"user {username!r} is disabled; enable the account before giving it a token")
    if not AccessProfile.objects.filter(user=user).exists():
        raise ServiceError(f"user {username!r} has no role; give it one first (onemap user add)")
    name = name.strip()
    if not name or len(name) > 100:
        raise ServiceError("token name must be 1 to 100 characters, e.g. qgis-laptop")
    if expires_at is not None:
        if timezone.is_naive(expires_at):
            raise ServiceError("expires_at must carry a time zone, e.g. 2027-01-01T00:00:00+08:00")
        if expires_at <= timezone.now():
            raise ServiceError(f"expires_at {expires_at.isoformat()} is in the past; give a future time")
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    row = AccessToken.objects.create(
        user=user, name=name, digest=token_digest(token), hint=token[: len(TOKEN_PREFIX) + 4], expires_at=expires_at
    )
    return row, token


def token_revoke(*, token_id: int) -> None:
    """Revoke a token (again is harmless); other server processes refuse it within their cache time."""
    if not AccessToken.objects.filter(pk=token_id).exists():
        raise ServiceError(f"no token with id {token_id}; `onemap token list` shows the ids")
    AccessToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(revoked_at=Now())
    access_changed.send(sender=AccessToken, token_id=token_id)


def token_list(*, username: str | None = None) -> list[AccessToken]:
    """Tokens (never their secrets), newest first; only ``username``'s when given."""
    tokens = AccessToken.objects.select_related("user").order_by("-created_at", "-id")
    if username is not None:
        tokens = tokens.filter(user=_user_named(username))
    return list(tokens)


# -- the access log ----------------------------------------------------------------


def access_log_write(
    *, identity: Identity, route: str, collection: str, record_ids: Iterable[object], remote_addr: str | None
) -> int:
    """Append one access-log row per personal record read; returns how many were written."""
    address = ip_address_or_none(remote_addr)
    entries = [
        AccessLogEntry(
            user_id=identity.user_id,
            username=identity.username,
            role=identity.role,
            route=route,
            collection=collection,
            record_id=str(record_id),
            remote_addr=address,
        )
        for record_id in record_ids
    ]
    AccessLogEntry.objects.bulk_create(entries)
    return len(entries)


# -- idempotent requests (phones replaying what they queued offline) ------------------


def request_claim(*, user_id: int, key: str, fingerprint: str) -> IdempotentRequest | None:
    """Claim ``key`` for a write about to be made: None when it is new (now claimed), else the earlier request.

    Must run inside the write's transaction (the claim commits or vanishes with it). A second
    request with the same key waits here until the first commits, then gets the first's row.
    """
    _in_transaction("request_claim")
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO idempotent_requests (user_id, key, fingerprint, content_type, body) "
                       "VALUES (%s, %s, %s, '', ''::bytea) ON CONFLICT (user_id, key) DO NOTHING RETURNING id",
                       [user_id, key, fingerprint])
        if cursor.fetchone() is not None:
            return None
    return IdempotentRequest.objects.get(user_id=user_id, key=key)


def request_answer(*, user_id: int, key: str, status: int, content_type: str, body: bytes) -> None:
    """Keep the answer to a claimed request, for its replays (in the same transaction as the claim)."""
    _in_transaction("request_answer")
    IdempotentRequest.objects.filter(user_id=user_id, key=key).update(status=status, content_type=content_type,
                                                                      body=body)


def _in_transaction(what: str) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{what} must run inside the transaction of the write it keys")


# -- shared with the web layer ------------------------------------------------------


def token_digest(token: str) -> str:
    """The stored form of a token: hex SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def ip_address_or_none(value: str | None) -> str | None:
    """``value`` as a normalised IP address, or None when it is not one."""
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


# -- helpers -----------------------------------------------------------------------


def _check_username(username: str) -> None:
    User = get_user_model()
    if not username or len(username) > 150:
        raise ServiceError("username must be 1 to 150 characters")
    try:
        User.username_validator(username)
    except ValidationError:
        raise ServiceError(
            f"username {username!r} may contain only letters, digits and @ . + - _ (no spaces)"
        ) from None


def _grid_for_role(*, role: str, grid_code: str | None) -> Grid | None:
    if role != GRID_WORKER:
        if grid_code:
            raise ServiceError(f"only grid workers are bound to a grid; give no grid for role {role!r}")
        return None
    if not grid_code:
        raise ServiceError("a grid worker must be bound to a level-3 grid; give its code (--grid CODE)")
    grid = Grid.objects.filter(code=grid_code).first()
    if grid is None:
        raise ServiceError(f"no grid with code {grid_code!r}; `onemap grid-for-point LON LAT` finds a grid's code")
    if grid.level != 3:
        below = list(Grid.objects.filter(code__startswith=grid.code, level=3).order_by("code")[:3])
        hint = f", e.g. {', '.join(g.code for g in below)}" if below else ""
        raise ServiceError(
            f"grid {grid.code} is level {grid.level}; a grid worker must be bound to a level-3 grid{hint}"
        )
    return grid


def _user_named(username: str) -> User:
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ServiceError(f"no user {username!r}; `onemap user list` shows the users")
    return user
