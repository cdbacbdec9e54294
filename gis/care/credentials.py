"""Devices' passwords: issued here, kept as Mosquitto's own digest, checked by the broker and the HTTP ingest.

A sensor signs in to the broker with its code as username; a gateway with its own code. The
password is made here, shown once, and only its digest is kept (``device_credentials``), in
the form of Mosquitto's password file (PBKDF2-SHA512, ``$7$iterations$salt$hash``), so the
file the broker reads is written from the rows (:func:`password_file_lines`) and the HTTP
ingest checks the same password (:func:`credential_check`).
"""

from __future__ import annotations

import re
import secrets

from django.db import transaction
from django.db.models.functions import Now

from gis.care.models import DeviceCredential, Gateway, Sensor
from gis.care.passwords import digest_matches, password_digest
from gis.services import ServiceError

PASSWORD_BYTES = 24
# the username stands in the broker's ACL patterns (%u): a '/', '+' or '#' in it would widen a device's topic
DEVICE_CODE = re.compile(r"[A-Za-z0-9._-]{1,40}")


@transaction.atomic
def credential_issue(*, code: str, kind: str | None = None) -> str:
    """A new password for the sensor or gateway ``code`` (any earlier one stops working); returned once."""
    if not DEVICE_CODE.fullmatch(code):
        raise ServiceError(f"a device code for the broker is 1 to 40 letters, digits, '.', '_' or '-'; got {code!r}")
    kind = _kind_of(code, kind)
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    digest = password_digest(password)
    updated = DeviceCredential.objects.filter(username=code).update(kind=kind, digest=digest, rotated_at=Now())
    if not updated:
        DeviceCredential.objects.create(username=code, kind=kind, digest=digest)
    return password


def credential_check(*, username: str, password: str, kind: str = "sensor") -> bool:
    """Whether ``password`` is the current password of device ``username`` (of ``kind``)."""
    digest = (DeviceCredential.objects.filter(username=username, kind=kind)
              .values_list("digest", flat=True).first())
    return digest is not None and digest_matches(digest, password)


def password_file_lines() -> list[str]:
    """``username:digest`` for every device credential, in the form of Mosquitto's password file."""
    return [f"{username}:{digest}" for username, digest
            in DeviceCredential.objects.order_by("username").values_list("username", "digest")]


def _kind_of(code: str, kind: str | None) -> str:
    is_sensor = Sensor.objects.filter(code=code).exists()
    is_gateway = Gateway.objects.filter(code=code).exists()
    if kind is None:
        if is_sensor and is_gateway:
            raise ServiceError(f"{code!r} is both a sensor and a gateway; say which (--gateway for the gateway)")
        kind = "gateway" if is_gateway else "sensor"
    if kind == "sensor" and not is_sensor:
        raise ServiceError(f"there is no sensor {code!r}")
    if kind == "gateway" and not is_gateway:
        raise ServiceError(f"there is no gateway {code!r}")
    return kind
