"""The HTTP ingest: ``POST /api/sensors/{code}/events``, the MQTT message's body over HTTP.

For a device that cannot speak MQTT. The body is one event ``{ts, type, seq, ...}`` or a list of
them; the device signs in with its own broker credentials (HTTP Basic, username = its code, or
its password as a Bearer token). Every event is checked before any is stored: one bad event is a
400 naming it, and nothing is stored. Stored events go through the same service as MQTT ingest
(``gis.care.ingest.events_record``), so ``(sensor, seq)`` makes a repeated POST harmless: the
answer counts what was new and what was a duplicate. See ``docs/sensors.md``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from api.responses import json_answer

MAX_BODY = 256 * 1024
MAX_EVENTS = 500
CHALLENGE = 'Basic realm="onemap devices", charset="UTF-8"'


class _Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


@csrf_exempt
def sensor_events(request: HttpRequest, code: str) -> JsonResponse:
    """Store the events of sensor ``code`` sent by that sensor; counts of new and duplicate events."""
    try:
        if request.method != "POST":
            raise _Refusal(405, "only POST is answered here", {"Allow": "POST"})
        _authenticate(request, code)
        events = _events(request)
        return json_answer(_record(code, events))
    except _Refusal as exc:
        return json_answer({"status": exc.status, "error": str(exc)}, exc.status, exc.headers)


def _authenticate(request: HttpRequest, code: str) -> None:
    from gis.care.credentials import DEVICE_CODE, credential_check
    from gis.care.models import Sensor

    if not DEVICE_CODE.fullmatch(code):
        raise _Refusal(404, "no such sensor: a sensor's code is 1 to 40 letters, digits, '.', '_' or '-'")
    username, password = _credentials(request.META.get("HTTP_AUTHORIZATION", ""), code)
    if not credential_check(username=username, password=password):
        raise _Refusal(401, "Sign in as the device: HTTP Basic with the sensor's code and its password "
                            "(onemap broker credentials CODE), or the password as a Bearer token.",
                       {"WWW-Authenticate": CHALLENGE})
    if username != code:
        raise _Refusal(403, f"device {username} may post only its own events (/api/sensors/{username}/events)")
    if not Sensor.objects.filter(code=code).exists():
        raise _Refusal(404, f"there is no sensor {code} any more; its credentials outlived it")


def _credentials(header: str, code: str) -> tuple[str, str]:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return code, value
    if scheme.lower() == "basic" and value:
        try:
            username, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):
            raise _Refusal(401, "the Basic credentials are not base64 of username:password",
                           {"WWW-Authenticate": CHALLENGE}) from None
        if sep:
            return username, password
    raise _Refusal(401, "Sign in as the device: HTTP Basic with the sensor's code and its password, or the password "
                        "as a Bearer token.", {"WWW-Authenticate": CHALLENGE})


def _events(request: HttpRequest) -> list[dict]:
    from gis.care.ingest import Rejected, event_parse

    raw = request.body
    if len(raw) > MAX_BODY:
        raise _Refusal(413, f"the body is {len(raw):,} bytes; at most {MAX_BODY:,} are taken")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Refusal(400, f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise _Refusal(400, "the body is JSON nested too deep") from None
    events = body if isinstance(body, list) else [body]
    if not 1 <= len(events) <= MAX_EVENTS:
        raise _Refusal(400, f"send 1 to {MAX_EVENTS} events (an object or a list of them), got {len(events)}")
    now = datetime.now(UTC)
    for index, event in enumerate(events):
        try:
            if not isinstance(event, dict):
                raise Rejected(f"an event must be a JSON object, got {type(event).__name__}")
            event_parse(event, now=now, future_s=_limits().future_s)
        except Rejected as exc:
            where = f"event {index}" if isinstance(body, list) else "the event"
            raise _Refusal(400, f"{where}: {exc}; nothing was stored") from None
    return events


def _record(code: str, events: list[dict]) -> dict:
    from gis.care.ingest import DeviceMessage, events_record

    limits = _limits()
    bucket = _bucket()
    now = time.monotonic()
    for _ in events:
        if not bucket.allow(code, now):
            wait = max(1, int(bucket.wait_s(code, now) + 0.999))
            raise _Refusal(429, f"sensor {code} sends more than {limits.rate_per_s:g} events a second "
                                f"(bursts of {limits.burst}); try again in {wait} s", {"Retry-After": str(wait)})
    counts = events_record(messages=[DeviceMessage(kind="sensor", code=code, body=e, source="http") for e in events],
                           future_s=limits.future_s)
    return counts.as_dict()


_buckets: dict = {}


def _bucket():
    """This process's token bucket per device (the MQTT ingest keeps its own), made from the settings."""
    from gis.care.ingest import TokenBucket

    limits = _limits()
    key = (limits.rate_per_s, limits.burst)
    if key not in _buckets:
        _buckets[key] = TokenBucket(*key)
    return _buckets[key]


def _limits():
    from core.settings import settings

    return settings().mqtt



urlpatterns = [
    path("<str:code>/events", sensor_events, name="sensor-events"),
]
