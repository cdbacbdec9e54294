"""Writes of Open311: keys issued and revoked, a service request submitted as a resident's report.

A request goes through :func:`gis.reports.services.report_submit` like every report (checked,
located, limited per key, its incident and case opened); what Open311 adds (the key, the
answers to the service's questions, a media_url) is kept beside it in the same transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.db.models.functions import Now

from gis.open311 import catalogue
from gis.open311.models import Open311Key, Open311Request
from gis.reports import photos
from gis.reports.models import Report
from gis.reports.services import MAX_DESCRIPTION, ReportRefused, Sender, report_submit
from gis.services import ServiceError

KEY_PREFIX = "o311_"
KEY_BYTES = 24
MAX_MEDIA_URL = 1000
_NAME = re.compile(r"^[\w.@+-]{1,64}$")


# -- keys ------------------------------------------------------------------------------------


def key_add(*, name: str) -> tuple[Open311Key, str]:
    """A new key for an app named ``name``: the row and the key itself (shown once, only its digest is kept)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ServiceError("a key's name is 1 to 64 letters, digits and . @ + - _ (no spaces), e.g. zz12345-app")
    if Open311Key.objects.filter(name=name).exists():
        raise ServiceError(f"there is a key named {name!r} already (names are never reused: they stay on "
                           "the reports sent with them); choose another name")
    secret = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    try:
        with transaction.atomic():
            row = Open311Key.objects.create(name=name, digest=key_digest(secret), hint=secret[:len(KEY_PREFIX) + 4])
    except IntegrityError:  # the same name added at the same moment elsewhere
        raise ServiceError(f"there is a key named {name!r} already; choose another name") from None
    return row, secret


def key_revoke(*, name: str) -> Open311Key:
    """Revoke a key by its name (again is harmless); requests with it are refused from now on."""
    row = Open311Key.objects.filter(name=name).first() if isinstance(name, str) else None
    if row is None:
        raise ServiceError(f"there is no key named {name!r}; `onemap open311-key list` shows them")
    Open311Key.objects.filter(pk=row.pk, revoked_at__isnull=True).update(revoked_at=Now())
    row.refresh_from_db()
    return row


def key_list() -> list[Open311Key]:
    """Every key (never its secret), oldest first."""
    return list(Open311Key.objects.order_by("created_at", "id"))


def key_holder(secret: str) -> Open311Key | None:
    """The active key ``secret`` is, or None (unknown, revoked, or not a key at all)."""
    if not isinstance(secret, str) or not secret.startswith(KEY_PREFIX) or len(secret) > 100:
        return None
    return Open311Key.objects.filter(digest=key_digest(secret), revoked_at__isnull=True).first()


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# -- a service request -----------------------------------------------------------------------


def request_submit(*, key: Open311Key, service_code: str, lon: float, lat: float, crs: str = "wgs84",
                   description: str = "", answers: dict[str, list[str]] | None = None, media_url: str = "",
                   photo_files: list[bytes] | None = None, device: str = "", phone: str = "",
                   at: datetime | None = None) -> Report:
    """A resident's report sent by an app with an Open311 key; ReportRefused (or another ServiceError) says why not."""
    svc = catalogue.service(service_code)
    if svc is None:
        codes = ", ".join(s.code for s in catalogue.services())
        raise ReportRefused(f"service_code must be one of {codes}; got {str(service_code)[:60]!r}")
    checked = catalogue.check_answers(svc, answers or {})
    media_url = _checked_media_url(media_url)
    text = _with_answers(description, catalogue.answers_text(svc, checked))
    sender = Sender(device=device, phone=phone, channel="open311", api_key=key.name)
    with transaction.atomic():
        report = report_submit(category=svc.code, description=text, lon=lon, lat=lat, crs=crs,
                               photo_files=photo_files, sender=sender, at=at)
        try:
            Open311Request.objects.create(report=report, key=key, attributes=checked, media_url=media_url)
        except BaseException:
            photos.remove(report.code)  # the report rolls back with this transaction; its photos go too
            raise
    return report


def _with_answers(description: str, answers: str) -> str:
    if not isinstance(description, str):
        raise ReportRefused("description must be text")
    if not answers:
        return description
    if len(description) > MAX_DESCRIPTION:
        return description  # the report's own check says it is too long
    text = f"{description}\n【{answers}】" if description else f"【{answers}】"
    if len(text) > MAX_DESCRIPTION:
        raise ReportRefused(f"description with the attributes' answers is {len(text):,} characters long; at most "
                            f"{MAX_DESCRIPTION:,} are allowed (shorten the description by {len(text) - MAX_DESCRIPTION:,})")
    return text


def _checked_media_url(url: str) -> str:
    """An http(s) URL kept as text: never fetched, so it need only be well formed."""
    if not url:
        return ""
    if not isinstance(url, str) or len(url) > MAX_MEDIA_URL:
        raise ReportRefused(f"media_url must be a URL of at most {MAX_MEDIA_URL} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise ReportRefused("media_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ReportRefused("media_url must be an http or https URL (or send the photo itself as the multipart "
                            "field media)")
    return url
