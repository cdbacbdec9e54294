"""Writes of residents' reports: submit (a new case), "me too" (join one), rate, dispute, moderate, ban.

Every face (the ``/report/`` page, Open311) goes through these. A report is one transaction:
the photos are cleaned and written durably first, then the report, its incident and its case
are committed together; a refusal leaves nothing behind (photos included).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core import vocabulary
from core.identity import Identity
from gis.cases import services as cases
from gis.cases.models import Case
from gis.cases.workflow import REPORTER
from gis.incidents.services import incident_create
from gis.reports import personal, photos
from gis.reports.models import Report, ReporterBan, ReportModeration
from gis.services import ServiceError, check_values
from gis.spatial import gcj02
from gis.spatial.selectors import grid_for_point

# what a resident may report: every category the public may see (an elder's alert is the sensors')
CATEGORIES = tuple(code for code in vocabulary.PUBLISHED_CATEGORIES)
MAX_DESCRIPTION = 4000
BOUNDARY_M = 30.0  # a pin this close to a neighbouring grid is flagged for its worker too
# reports an hour, per sender (a resident's real need is a few; a flood is refused with 429)
# (an Open311 key speaks for many residents through one app: its limit is wider)
LIMITS_PER_HOUR = {"device": 5, "phone": 5, "ip": 30, "api_key": 600}
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L


class ReportRefused(ServiceError):
    """A report that cannot be taken as it is (outside the subdistrict, bad place, bad text)."""


class ReportLimited(ServiceError):
    """Too many reports from one sender (HTTP 429); ``retry_after_s`` says when one may try again."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ReportNotFound(ServiceError):
    """No report has this tracking code (HTTP 404)."""


@dataclass(frozen=True)
class Sender:
    """Who sends a report, as far as the server can tell; the values are hashed before they are kept."""

    device: str = ""  # an id the page keeps in the browser's storage
    ip: str = ""
    phone: str = ""  # optional; the resident's own choice
    channel: str = "web"
    api_key: str = ""  # Open311: the key's name


def locate(*, lon: float, lat: float, crs: str = "wgs84") -> tuple[float, float]:
    """A resident's point in WGS84: phones' map pickers give GCJ-02 (``crs="gcj02"``)."""
    if crs not in ("wgs84", "gcj02"):
        raise ReportRefused(f"crs must be wgs84 or gcj02; got {crs!r}")
    for name, value, low, high in (("lon", lon, -180, 180), ("lat", lat, -90, 90)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise ReportRefused(f"{name} must be a number from {low} to {high}; got {value!r}")
    return gcj02.to_wgs84(lon, lat) if crs == "gcj02" else (float(lon), float(lat))


def report_submit(*, category: str, description: str, lon: float, lat: float, crs: str = "wgs84",
                  photo_files: list[bytes] | None = None, sender: Sender = Sender(),
                  at: datetime | None = None) -> Report:
    """A resident's new report: checked, located in its grid, its incident and case opened."""
    at = at or timezone.now()
    _check_text(category=category, description=description)
    lon, lat = locate(lon=lon, lat=lat, crs=crs)
    path = _inside(lon, lat)
    cleaned = _clean_photos(photo_files or [])
    phone = personal.normalise_phone(sender.phone) if sender.phone else ""
    digests = _digests(sender, phone)
    code = new_code()
    stored = photos.store(code, cleaned)
    try:
        with transaction.atomic():
            _check_limits(digests, at)
            banned = _banned(digests)
            incident = None
            case = None
            if not banned:
                label = vocabulary.CATEGORY[category].label_zh
                incident = incident_create(lon=lon, lat=lat, category=category, source="resident",
                                           # its own random code: the case's code (shown to other residents
                                           # for "me too") must not carry the tracking code, the reporter's key
                                           code=f"INC-R-{new_code()[1:]}", title=f"居民上报：{label}",
                                           description=description, reported_at=at)
                case = cases.case_open(incident_id=incident.id, actor=_reporter(code), at=at)
                near = _neighbour(lon, lat, path)
                if near is not None:
                    Case.objects.filter(pk=case.pk).update(near_grid_id=near)
            report = Report.objects.create(
                code=code, kind="report", channel=sender.channel, case=case, incident=incident,
                category=category, description=description, geom=Point(lon, lat, srid=4326),
                grid_id=path.level3.id,
                photos=stored, phone_cipher=personal.encrypt(phone) if phone else None,
                phone_digest=digests["phone"], device_digest=digests["device"], ip_digest=digests["ip"],
                api_key=sender.api_key, moderation="hidden" if banned else "pending", banned=banned,
                created_at=at)
    except BaseException:
        photos.remove(code)
        raise
    return report


def report_me_too(*, case_code: str, sender: Sender = Sender(), description: str = "",
                  at: datetime | None = None) -> Report:
    """附议: the resident joins an open case as a co-reporter (told when it closes; may dispute)."""
    at = at or timezone.now()
    check_values(Report, {"description": description})
    phone = personal.normalise_phone(sender.phone) if sender.phone else ""
    digests = _digests(sender, phone)
    case = Case.objects.select_related("incident").filter(code=case_code).first()
    if case is None or case.category not in CATEGORIES:
        raise ReportNotFound(f"there is no open case {case_code} to join")
    code = new_code()
    with transaction.atomic():
        _check_limits(digests, at)
        banned = _banned(digests)
        if not banned:
            cases.case_join(case_id=case.id, actor=_reporter(code), report=code, at=at)
        point = case.incident.geom
        return Report.objects.create(
            code=code, kind="me_too", channel=sender.channel, case=None if banned else case,
            category=case.category, description=description, geom=point, grid_id=case.incident.grid_id,
            phone_cipher=personal.encrypt(phone) if phone else None, phone_digest=digests["phone"],
            device_digest=digests["device"], ip_digest=digests["ip"], api_key=sender.api_key,
            moderation="hidden" if banned else "pending", banned=banned, created_at=at)


def report_rate(*, code: str, rating: int, at: datetime | None = None) -> Report:
    """评价: the reporter rates the closed case (1–5); the original report's rating is the case's."""
    report = _report(code)
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ServiceError(f"rating must be a whole number from 1 to 5; got {rating!r}")
    with transaction.atomic():
        if report.kind == "report":
            cases.case_rate(case_id=report.case_id, actor=_reporter(code), rating=rating, at=at)
        else:  # a co-reporter's rating is theirs; the case keeps the first reporter's
            _check_closed(report)
        Report.objects.filter(pk=report.pk).update(rating=rating)
    report.rating = rating
    return report


def report_dispute(*, code: str, reason: str, at: datetime | None = None) -> Case:
    """异议: a reporter (first or "me too") reopens the closed case within 7 days of closure."""
    report = _report(code)
    return cases.case_reopen(case_id=report.case_id, actor=_reporter(code), reason=reason, at=at)


# -- moderation -----------------------------------------------------------------------------


def report_moderate(*, code: str, actor: Identity, action: str, reason: str = "", text: str | None = None,
                    photo: str | None = None) -> Report:
    """A moderator publishes, hides, redacts the text of, or removes a photo of a report; each step recorded."""
    if action not in {a for a, _ in ReportModeration.ACTIONS}:
        raise ServiceError(f"action must be one of {', '.join(a for a, _ in ReportModeration.ACTIONS)}")
    check_values(ReportModeration, {"reason": reason})
    with transaction.atomic():
        report = Report.objects.select_for_update().filter(code=code).first()
        if report is None:
            raise ReportNotFound(f"there is no report {code}")
        before = ""
        if action == "publish":
            if report.banned:
                raise ServiceError(f"report {code} is from a banned sender; it stays hidden")
            report.moderation = "public"
        elif action == "hide":
            report.moderation = "hidden"
        elif action == "redact":
            if text is None:
                raise ServiceError("redact needs the new text")
            _check_text(category=report.category, description=text)
            before, report.description = report.description, text
            if report.incident_id:
                report.incident.description = text
                report.incident.save(update_fields=["description"])
        elif action == "remove_photo":
            if photo not in report.photos:
                raise ServiceError(f"report {code} has no photo {photo!r}; it has {', '.join(report.photos) or 'none'}")
            report.photos = [p for p in report.photos if p != photo]
            transaction.on_commit(lambda: photos.remove(code, [photo]))
        report.save()
        ReportModeration.objects.create(report=report, actor=actor.username or actor.role, action=action,
                                        reason=reason, before=before)
    return report


def ban_add(*, kind: str, value: str, actor: Identity, reason: str = "") -> ReporterBan:
    """Ban a device, address or phone: its reports from now on are hidden and never dispatched."""
    if kind not in {k for k, _ in ReporterBan.KINDS}:
        raise ServiceError(f"kind must be one of {', '.join(k for k, _ in ReporterBan.KINDS)}")
    value = personal.normalise_phone(value) if kind == "phone" else value.strip()
    if not value:
        raise ServiceError(f"the {kind} to ban is empty")
    check_values(ReporterBan, {"reason": reason})
    digest = personal.digest(kind, value)
    existing = ReporterBan.objects.filter(kind=kind, digest=digest, revoked_at__isnull=True).first()
    return existing or ReporterBan.objects.create(kind=kind, digest=digest, reason=reason,
                                                  created_by=actor.username or actor.role)


def ban_from_report(*, code: str, actor: Identity, reason: str = "") -> list[ReporterBan]:
    """Ban every sender trace a report carries (device, address, phone), without seeing their values."""
    report = _report(code)
    made = []
    for kind, digest in (("device", report.device_digest), ("ip", report.ip_digest), ("phone", report.phone_digest)):
        if digest and not ReporterBan.objects.filter(kind=kind, digest=digest, revoked_at__isnull=True).exists():
            made.append(ReporterBan.objects.create(kind=kind, digest=digest, reason=reason,
                                                   created_by=actor.username or actor.role))
    Report.objects.filter(pk=report.pk).update(moderation="hidden")
    return made


def phone_of(report_id: str) -> str | None:
    """The number a report left, decrypted for the one SMS being sent now (the outbox's resolver)."""
    if not report_id.isdigit():
        return None
    blob = Report.objects.filter(pk=int(report_id), banned=False).values_list("phone_cipher", flat=True).first()
    return personal.decrypt(blob) if blob else None


# -- checks ---------------------------------------------------------------------------------


def _check_text(*, category: str, description: str) -> None:
    if category not in CATEGORIES:
        raise ReportRefused(f"category must be one of {', '.join(CATEGORIES)}; got {category!r}")
    if not isinstance(description, str):
        raise ReportRefused("description must be text")
    if len(description) > MAX_DESCRIPTION:
        raise ReportRefused(f"description is {len(description):,} characters long; at most {MAX_DESCRIPTION:,} "
                            "are allowed")
    if "\x00" in description:
        raise ReportRefused("description contains a NUL character (\\u0000), which text cannot hold")


def _inside(lon: float, lat: float):
    """The point's grids; ReportRefused with a sentence when it lies outside the subdistrict."""
    path = grid_for_point(lon=lon, lat=lat)
    if path is None:
        raise ReportRefused("这个位置不在本街道的服务范围内，请拨打 12345 市民热线反映。"
                            f"(The place {lon:.6f}, {lat:.6f} lies outside the subdistrict's grids.)")
    return path


def _neighbour(lon: float, lat: float, path) -> int | None:
    """Another level-3 grid within ``BOUNDARY_M`` of the pin (the nearest), whose worker sees the report too."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT g.id FROM grids g WHERE g.level = 3 AND g.id <> %s"
            " AND ST_DWithin(g.geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, %s)"
            " ORDER BY g.geom::geography <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography LIMIT 1",
            [path.level3.id, lon, lat, BOUNDARY_M, lon, lat])
        row = cursor.fetchone()
    return row[0] if row else None


def _clean_photos(files: list[bytes]) -> list[bytes]:
    if len(files) > photos.MAX_PHOTOS:
        raise photos.PhotoRefused(f"{len(files)} photos; at most {photos.MAX_PHOTOS} are allowed")
    return [photos.clean(data, name=f"photo {n}") for n, data in enumerate(files, start=1)]


def _digests(sender: Sender, phone: str) -> dict[str, str]:
    for name in ("device", "ip", "api_key"):
        value = getattr(sender, name)
        if not isinstance(value, str) or len(value) > 200 or "\x00" in value:
            raise ServiceError(f"{name} must be text of at most 200 characters")
    return {"device": personal.digest("device", sender.device), "ip": personal.digest("ip", sender.ip),
            "phone": personal.digest("phone", phone), "api_key": sender.api_key}  # a key's name is no secret


def _check_limits(digests: dict[str, str], at: datetime) -> None:
    """At most ``LIMITS_PER_HOUR`` reports an hour per device, phone and address (429 beyond)."""
    since = at - timedelta(hours=1)
    for kind, limit in LIMITS_PER_HOUR.items():
        digest = digests[kind]
        if not digest:
            continue
        # one sender's reports queue here, so two at once cannot both slip under the limit
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", [f"report:{kind}:{digest}"])
        column = "api_key" if kind == "api_key" else f"{kind}_digest"
        recent = list(Report.objects.filter(**{column: digest, "created_at__gt": since})
                      .order_by("created_at").values_list("created_at", flat=True)[:limit])
        if len(recent) >= limit:
            wait = max(1, int((recent[0] + timedelta(hours=1) - at).total_seconds()))
            raise ReportLimited(f"too many reports from this {kind}: at most {limit} an hour; "
                                f"try again in {wait // 60 + 1} minutes", retry_after_s=wait)


def _banned(digests: dict[str, str]) -> bool:
    wanted = [(kind, digest) for kind, digest in digests.items() if digest and kind != "api_key"]
    if not wanted:
        return False
    query = ReporterBan.objects.filter(revoked_at__isnull=True)
    match = Q()
    for kind, digest in wanted:
        match |= Q(kind=kind, digest=digest)
    return query.filter(match).exists()


def _report(code: str) -> Report:
    report = Report.objects.filter(code=code).first() if isinstance(code, str) and len(code) <= 16 else None
    if report is None or report.case_id is None:
        raise ReportNotFound(f"there is no report with the tracking code {code!r}")
    return report


def _check_closed(report: Report) -> None:
    state = Case.objects.filter(pk=report.case_id).values_list("state", flat=True).first()
    if state != "closed":
        raise cases.CaseRefused(f"the case is {state}; it can be rated once it is closed")


def _reporter(code: str) -> Identity:
    return Identity(role=REPORTER, username=f"report:{code}")


def new_code(pick=secrets.choice) -> str:
    """A fresh tracking code: R and 11 characters (~54 bits); ``pick`` chooses each (a seeded one for the demo)."""
    return "R" + "".join(str(pick(_CODE_ALPHABET)) for _ in range(11))
