"""The phone's live feed ``/m/events``: the big screen's feed (``api.live``), cut down to one grid worker.

A phone hears of a change to an incident of its grid (only ``{op, id}``: it reads its tasks
again, under its own row-level security) and of the in-app notifications addressed to its
worker (a new dispatch); nothing else of the feed reaches it. ``reset`` passes, so the phone
reloads. The ASGI app (``host.asgi``) serves the stream and asks :func:`phone_watch` who
is asking and what they may hear.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from api.live import Message

EVENTS_PATH = "/m/events"


def phone_watch(environ: dict) -> tuple[tuple[int, str, dict] | None, Callable[[Message], Message | None] | None]:
    """(refusal, None) for a caller who may not listen, else (None, the filter of their messages)."""
    from api.auth import AuthError, require_role
    from api.mobile.views import MOBILE_ROLES
    from gis.spatial.models import GridWorker

    try:
        identity = require_role(_Request(environ), MOBILE_ROLES, what="the phone's live feed")
    except AuthError as exc:
        return (exc.status, str(exc), exc.headers), None
    worker = GridWorker.objects.filter(user_id=identity.user_id, grid_id=identity.grid_id).values_list(
        "code", flat=True).first()
    return None, phone_filter(grid_id=identity.grid_id, worker_code=worker)


def phone_filter(*, grid_id: int, worker_code: str | None) -> Callable[[Message], Message | None]:
    """What of one feed message a phone of ``grid_id`` (worker ``worker_code``) is sent: a smaller message, or None."""
    recipient = f"worker:{worker_code}" if worker_code else None

    def keep(message: Message) -> Message | None:
        if message.event in ("reset", "hello"):
            return message
        if message.event == "incident":
            data = json.loads(message.data)
            properties = (data.get("feature") or {}).get("properties") or {}
            if properties.get("grid_id") != grid_id:
                return None  # another grid's, or a deletion whose grid is no longer known
            return Message("incident", json.dumps({"op": data["op"], "id": data["id"]}), message.id)
        if message.event == "notification" and recipient is not None:
            data = json.loads(message.data)
            if data.get("recipient") == recipient:
                return message
        return None

    return keep


class _Request:
    def __init__(self, environ):
        self.META = environ
