"""The outbox: one row per notification to one recipient on one channel, and each request made for it."""

from __future__ import annotations

from django.db import models
from django.db.models import CheckConstraint, Q
from django.db.models.functions import Now

IN_APP, DINGTALK, SMS = "in_app", "dingtalk", "sms"
CHANNELS = (IN_APP, DINGTALK, SMS)

# pending: waiting for its next attempt (next_attempt_at); sending: claimed by a worker until next_attempt_at
# (its lease); failed: the last attempt failed, retried at next_attempt_at; delivered; dead: out of attempts
# (a commander may replay it); coalesced: sent inside a summary (summary_id) when its robot was at its limit
PENDING, SENDING, DELIVERED, FAILED, DEAD, COALESCED = "pending", "sending", "delivered", "failed", "dead", "coalesced"
STATES = (PENDING, SENDING, DELIVERED, FAILED, DEAD, COALESCED)
WAITING = (PENDING, FAILED)  # states the sweep picks up once next_attempt_at has come (and SENDING past its lease)


class Notification(models.Model):
    """One notification to one recipient on one channel; written in the transaction of the change it tells of."""

    key = models.CharField(max_length=200, unique=True,
                           help_text="Idempotency key: one notification per key, sent with every attempt")
    channel = models.CharField(max_length=10, choices=[(c, c) for c in CHANNELS])
    recipient = models.CharField(max_length=200, help_text="A user name (in_app), robot name (dingtalk) or phone (sms)")
    subject_kind = models.CharField(max_length=30, help_text="What it is about, e.g. case")
    subject_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="{title, text, ...}")
    state = models.CharField(max_length=10, choices=[(s, s) for s in STATES], default=PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_default=Now())
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())
    delivered_at = models.DateTimeField(null=True, blank=True)
    summary = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="members",
                                help_text="The summary it was coalesced into (dingtalk storms)")

    class Meta:
        db_table = "notifications"
        constraints = [
            CheckConstraint(condition=Q(channel__in=list(CHANNELS)), name="notifications_channel_known"),
            CheckConstraint(condition=Q(state__in=list(STATES)), name="notifications_state_known"),
        ]
        indexes = [
            # the sweep: rows still to send whose time has come
            models.Index(fields=["next_attempt_at"], name="notifications_due_idx",
                         condition=Q(state__in=[PENDING, SENDING, FAILED])),
            # the dead letters commanders look at
            models.Index(fields=["created_at"], name="notifications_dead_idx", condition=Q(state=DEAD)),
            models.Index(fields=["subject_kind", "subject_id"], name="notifications_subject_idx"),
        ]


class NotificationAttempt(models.Model):
    """One request made to a channel for a notification; written before the request, its outcome after.

    The DingTalk rate limit counts these (per robot, over the last minute), so every worker
    on every machine sees the same budget. An attempt whose ``outcome`` stays empty was cut
    off by a crash: the remote may or may not have accepted it.
    """

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempt_log")
    channel = models.CharField(max_length=10)
    recipient = models.CharField(max_length=200)
    at = models.DateTimeField(db_default=Now())
    outcome = models.TextField(blank=True, default="", help_text="ok, or the error; empty while (or if cut off) sending")

    class Meta:
        db_table = "notification_attempts"
        indexes = [models.Index(fields=["channel", "recipient", "at"], name="notification_attempts_rate_idx")]
