"""The operator's overrides of the working calendar: a day made a day off, or a day off made a working day."""

from __future__ import annotations

from django.db import models
from django.db.models import CheckConstraint, Q
from django.db.models.functions import Now


class CalendarOverride(models.Model):
    """One day whose working status is the operator's, not the public calendar's (a typhoon day, a working weekend)."""

    day = models.DateField(unique=True, help_text="the local date (Asia/Shanghai) the override is for")
    working = models.BooleanField(help_text="true: a working day with the usual hours; false: a day off")
    reason = models.TextField(help_text="why, as the operator gave it, e.g. 台风停工 (typhoon), 补班 (make-up day)")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "calendar_overrides"
        constraints = [CheckConstraint(condition=~Q(reason=""), name="calendar_overrides_reason_given")]

    def __str__(self) -> str:
        return f"{self.day}: {'working' if self.working else 'day off'} ({self.reason})"
