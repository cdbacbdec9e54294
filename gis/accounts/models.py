"""Who may see what: roles, tokens, failed logins, the access log (services in :mod:`gis.accounts.services`)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import CheckConstraint, Q, UniqueConstraint
from django.db.models.functions import Now

from core import roles
from gis.spatial.models import Grid

ACCESS_ROLES = roles.ROLES


class AccessProfile(models.Model):
    """A user's role; a grid worker is bound to exactly one level-3 grid (a trigger checks the level)."""

    ROLES = [(role, role.replace("_", " ")) for role in ACCESS_ROLES]

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="access_profile"
    )
    role = models.CharField(max_length=20, choices=ROLES)
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.PROTECT, related_name="access_profiles")
    department = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "access_profiles"
        constraints = [
            CheckConstraint(condition=Q(role__in=ACCESS_ROLES), name="access_profiles_role_known"),
            CheckConstraint(
                condition=(Q(role=roles.GRID_WORKER, grid__isnull=False)
                           | (~Q(role=roles.GRID_WORKER) & Q(grid__isnull=True))),
                name="access_profiles_grid_iff_grid_worker",
            ),
        ]


class AccessToken(models.Model):
    """A personal access token; only the SHA-256 digest of the secret is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. qgis-laptop")
    digest = models.CharField(max_length=64, help_text="hex SHA-256 of the token")
    hint = models.CharField(max_length=12, help_text="The token's first characters, to tell tokens apart")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Updated at most once a minute")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "access_tokens"
        constraints = [
            # a constraint, not unique=True: no second (LIKE) index on a column only ever matched exactly
            UniqueConstraint(fields=["digest"], name="access_tokens_digest_unique"),
            CheckConstraint(condition=Q(digest__regex=r"^[0-9a-f]{64}$"), name="access_tokens_digest_hex"),
        ]


class LoginFailure(models.Model):
    """One rejected credential, kept for the rate limit shared by every server process."""

    at = models.DateTimeField(db_default=Now())
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    username = models.CharField(max_length=150, blank=True, default="", help_text="Lower-cased; empty for Bearer")

    class Meta:
        db_table = "login_failures"
        indexes = [
            models.Index(fields=["remote_addr", "at"], name="login_failures_addr_at_idx"),
            models.Index(fields=["username", "at"], name="login_failures_user_at_idx"),
            models.Index(fields=["at"], name="login_failures_at_idx"),
        ]


class AccessLogEntry(models.Model):
    """One read of personal data; the table is append-only (triggers refuse UPDATE, DELETE, TRUNCATE).

    A read writes a row per record it returned and, for a query, one row with no
    ``record_id`` that keeps what was asked (``query``) and how many records matched
    (``matched``): a count is personal data too (a filter on a name with ``offset`` past
    the end returns no record, but its ``numberMatched`` says whether the name is there).
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(db_default=Now())
    # plain columns, not keys: the log must outlive the users it names
    user_id = models.BigIntegerField(null=True, blank=True)
    username = models.TextField(null=True, blank=True)
    role = models.TextField()
    route = models.TextField(help_text="e.g. /ogc/collections/care_subjects/items")
    collection = models.TextField()
    record_id = models.TextField(null=True, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    query = models.TextField(null=True, blank=True, help_text="the query's parameters (query rows only)")
    matched = models.BigIntegerField(null=True, blank=True, help_text="records the query matched (query rows only)")

    class Meta:
        db_table = "access_log"
        indexes = [
            models.Index(fields=["at"], name="access_log_at_idx"),
            models.Index(fields=["collection", "record_id"], name="access_log_record_idx"),
        ]


class IdempotentRequest(models.Model):
    """A client's write, keyed by its own idempotency key: applied once, and a replay gets the first answer.

    Written in the same transaction as the write it answers, so a write and its key commit
    (or vanish) together. Phones replay their queued actions with the key they made offline.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotent_requests")
    key = models.CharField(max_length=100, help_text="the client's Idempotency-Key")
    fingerprint = models.CharField(max_length=64, help_text="hex SHA-256 of method, path and body")
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="the first answer's HTTP status")
    content_type = models.CharField(max_length=100, blank=True, default="")
    body = models.BinaryField(default=bytes, blank=True, help_text="the first answer's body, as sent")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "idempotent_requests"
        constraints = [UniqueConstraint(fields=["user", "key"], name="idempotent_requests_user_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotent_requests_at_idx")]
