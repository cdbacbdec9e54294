"""The command line's base, shared by every command group (``host.cli``, ``vision.cli``).

A command group raises :class:`CommandError` for a failure the user can act on (printed
without a traceback) and calls :func:`setup_django` before it touches the database. The
host registers what must happen first (starting the embedded PostgreSQL) with
:func:`before_setup`, so a command group need not know about it.
"""

from __future__ import annotations

import os
from typing import Callable

DJANGO_SETTINGS_MODULE = "host.settings"  # Django's settings, made by the host from core.settings
_before: list[Callable[..., None]] = []


class CommandError(RuntimeError):
    """A failure the user can act on; printed without a traceback."""


def before_setup(step: Callable[..., None]) -> None:
    """Run ``step(log_progress=...)`` before Django is set up (once each, in the order registered)."""
    if step not in _before:
        _before.append(step)


def setup_django(*, log_progress: bool = False) -> None:
    """The registered first steps, then Django with the project's settings."""
    for step in _before:
        step(log_progress=log_progress)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", DJANGO_SETTINGS_MODULE)
    import django

    django.setup()
