"""Writes of the elder-care domain: rules and periods, alerts into cases, visits, sensors, and who hears of what.

Keyword-only, each in a transaction. The rules' sweep itself is ``gis.care.rules``; the
functions here are what it calls for each alert raised (a case, dispatched to the grid's
worker) and what a person does: set a rule, declare an absence (外出报备 / 住院) or an
isolation period, record a visit's outcome, add or bind a sensor.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from core.identity import Identity
from core.vocabulary import CARE_CATEGORY
from gis.care.models import CareAlert, CareFault, CarePeriod, CareSubject, CareSubjectPrivate, CareVisit, Gateway, Sensor
from gis.care.private import private_seal
from gis.cases import services as cases
from gis.cases.models import Case, CaseEvent
from gis.cases.workflow import SYSTEM, S
from gis.incidents.services import incident_create
from gis.notifications.models import IN_APP
from gis.notifications.services import notify
from gis.services import ServiceError, check_values
from gis.spatial.models import GridWorker
from gis.spatial.routing import dispatch_recommendation

CARE_RULES = Identity(role=SYSTEM, username="care-rules")
MAINTENANCE = "maintenance"  # the device maintainers' in-app recipient (a sensor to fix)
NETWORK = "network"  # the network operators' (a gateway down)
AWAY_DAYS = 7  # an absence recorded by a visit lasts this long unless its end is given
_ALERT_TITLES = {"alert": "关爱对象{hours}小时无活动", "isolation": "居家隔离期间开门"}
_RULE_KEYS = {"warn_hours", "alert_hours", "no_activity_hours", "counted_hours", "inactivity"}
_OUTCOME_ZH = dict((code, label.split("(")[-1].rstrip(")")) for code, label in CareVisit.OUTCOMES)


# -- a person's personal fields (sealed at rest: gis.care.private) ------------------------------------


@transaction.atomic
def care_private_set(*, subject_id: int, gender: str, fields: dict) -> CareSubjectPrivate:
    """Write a person's personal fields, sealed under the personal-data key (the whole record is replaced)."""
    if gender not in ("F", "M"):
        raise ServiceError(f"gender must be F or M, not {gender!r}")
    try:
        sealed = private_seal(subject_id=subject_id, fields=fields)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    private, _ = CareSubjectPrivate.objects.update_or_create(
        subject_id=subject_id, defaults={"gender": gender, "sealed": sealed})
    return private


# -- the rule and the periods -------------------------------------------------------------------------


@transaction.atomic
def care_rule_set(*, subject_id: int, rule: dict) -> CareSubject:
    """A person's rule (read by the next sweep: no restart). Keys: warn_hours, alert_hours, counted_hours
    ``[from, to]`` (hours of the day, Asia/Shanghai, that count toward inactivity), inactivity (false: off)."""
    unknown = set(rule) - _RULE_KEYS
    if unknown:
        raise ServiceError(f"unknown rule keys: {', '.join(sorted(unknown))}; known: {', '.join(sorted(_RULE_KEYS))}")
    for key in ("warn_hours", "alert_hours", "no_activity_hours"):
        value = rule.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 24 * 60):
            raise ServiceError(f"{key} must be a number of hours above 0 and at most 1440; got {value!r}")
    if "warn_hours" in rule and "alert_hours" in rule and rule["warn_hours"] >= rule["alert_hours"]:
        raise ServiceError("warn_hours must be less than alert_hours")
    window = rule.get("counted_hours")
    if window is not None and (not isinstance(window, list) or len(window) != 2
                               or not all(isinstance(h, (int, float)) and not isinstance(h, bool) and 0 <= h <= 24
                                          for h in window) or window[0] == window[1]):
        raise ServiceError("counted_hours must be [from, to]: two different hours of the day, 0 to 24 "
                           "(e.g. [7, 22]; [22, 7] wraps past midnight)")
    if "inactivity" in rule and not isinstance(rule["inactivity"], bool):
        raise ServiceError("inactivity must be true or false")
    subject = CareSubject.objects.select_for_update().filter(pk=subject_id).first()
    if subject is None:
        raise ServiceError(f"there is no person under care {subject_id}")
    subject.monitoring_rule = dict(rule)
    subject.save(update_fields=["monitoring_rule", "updated_at"])
    return subject


@transaction.atomic
def care_period_add(*, subject_id: int, kind: str, starts_at: datetime, ends_at: datetime | None = None,
                    note: str = "", actor: Identity | None = None) -> CarePeriod:
    """外出报备 / 住院 (the inactivity rule rests) or 居家隔离 (a door opening raises an alert)."""
    check_values(CarePeriod, {"kind": kind, "note": note})
    if ends_at is not None and ends_at <= starts_at:
        raise ServiceError("a period must end after it starts")
    if not CareSubject.objects.filter(pk=subject_id).exists():
        raise ServiceError(f"there is no person under care {subject_id}")
    return CarePeriod.objects.create(subject_id=subject_id, kind=kind, starts_at=starts_at, ends_at=ends_at, note=note,
                                     created_by=(actor.username or actor.role) if actor else "")


@transaction.atomic
def care_period_end(*, period_id: int, at: datetime | None = None) -> CarePeriod:
    """The person is back (or the isolation is over) at ``at``."""
    at = at or timezone.now()
    period = CarePeriod.objects.select_for_update().filter(pk=period_id).first()
    if period is None:
        raise ServiceError(f"there is no period {period_id}")
    if at <= period.starts_at:
        raise ServiceError("a period must end after it starts")
    period.ends_at = at
    period.save(update_fields=["ends_at"])
    return period


# -- alerts into cases ---------------------------------------------------------------------------------


def care_alert_cases(*, at: datetime | None = None) -> list[int]:
    """Every raised alert without its case gets one, each in its own transaction; the cases' ids."""
    at = at or timezone.now()
    made = []
    while True:
        with transaction.atomic():
            alert = (CareAlert.objects.select_for_update(skip_locked=True, of=("self",))
                     .select_related("subject", "subject__building")
                     .filter(kind__in=("alert", "isolation"), incident__isnull=True, cleared_at__isnull=True)
                     .order_by("id").first())
            if alert is None:
                return made
            made.append(_open_case(alert, at).id)


def _open_case(alert: CareAlert, at: datetime) -> Case:
    """An incident at the person's building (never the flat), its case accepted, filed and dispatched."""
    subject = alert.subject
    door = subject.sensors.order_by("kind", "id").first()  # door_magnet sorts first: the phone finds the person by it
    hours = _alert_hours(subject)
    incident = incident_create(
        lon=subject.geom.x, lat=subject.geom.y, category=CARE_CATEGORY, source="sensor",
        code=f"INC-CARE-{alert.id}", severity=3, title=_ALERT_TITLES[alert.kind].format(hours=hours),
        reported_at=at, sensor=door, building=subject.building,
    )
    alert.incident = incident
    alert.save(update_fields=["incident"])
    case = cases.case_open(incident_id=incident.id, actor=CARE_RULES, at=at)
    cases.case_accept(case_id=case.id, actor=CARE_RULES, at=at)
    case = cases.case_file(case_id=case.id, actor=CARE_RULES, at=at)
    worker, advice = _worker_for(subject, incident, at)
    if worker is not None:
        case = cases.case_dispatch(case_id=case.id, actor=CARE_RULES, worker_id=worker.id, at=at,
                                   recommendation=advice)
    return case


def _alert_hours(subject: CareSubject) -> int:
    rule = subject.monitoring_rule or {}
    value = rule.get("alert_hours", rule.get("no_activity_hours", 48))
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 48


def _worker_for(subject: CareSubject, incident, at: datetime) -> tuple[GridWorker | None, dict]:
    """The level-3 grid's on-duty worker nearest by walking time; else the grid's first worker (on duty first)."""
    grid_id = incident.grid_id or subject.grid_id
    advice = dispatch_recommendation(lon=subject.geom.x, lat=subject.geom.y, grid_id=grid_id, now=at)
    if advice.get("recommended"):
        return GridWorker.objects.filter(pk=advice["recommended"]).first(), advice
    worker = GridWorker.objects.filter(grid_id=grid_id).order_by("-on_duty", "id").first() if grid_id else None
    return worker, advice


# -- visits --------------------------------------------------------------------------------------------


@transaction.atomic
def care_visit_record(*, case_id: int, actor: Identity, outcome: str, note: str = "",
                      position: tuple[float, float] | None = None, at: datetime | None = None,
                      until: datetime | None = None) -> CareVisit:
    """A visit's outcome for an alert's case: checked in at the address (position), what was found, a note.

    The case is signed for if it was not, marked arrived where a position is given and handled
    with the outcome; the alert is answered. Away or hospitalised: the rule rests until ``until``
    (default ``AWAY_DAYS``); fine, false alarm, emergency: the person was seen, a new silence starts.
    """
    at = at or timezone.now()
    check_values(CareVisit, {"outcome": outcome, "note": note})
    case = Case.objects.select_related("incident").filter(pk=case_id).first()
    alert = CareAlert.objects.filter(incident_id=case.incident_id).first() if case is not None else None
    if alert is None:
        raise ServiceError(f"case {case_id} is not an elder-care alert")
    worker = GridWorker.objects.filter(user_id=actor.user_id).first() if actor.user_id else None
    if actor.role == "grid_worker" and (worker is None or case.assignee_id != worker.id):
        raise cases.CaseRefused(f"case {case.code} is not dispatched to you")
    if until is not None and until <= at:
        raise ServiceError("until must be later than the visit")
    if case.state == "dispatched":
        cases.case_acknowledge(case_id=case.id, actor=actor, at=at, position=position)
    if position is not None:
        cases.case_arrive(case_id=case.id, actor=actor, position=position, at=at)
    arrived = (CaseEvent.objects.filter(case_id=case.id, action="arrive").order_by("-at", "-id")
               .values_list("at", "position").first())
    if arrived is None:
        raise ServiceError("check in at the address first (到场, with your position), or send the position now")
    label = _OUTCOME_ZH[outcome]
    cases.case_handle(case_id=case.id, actor=actor, at=at, position=position,
                      note=f"走访结果：{label}" + (f"。{note}" if note else ""))
    visit = CareVisit.objects.create(case=case, subject_id=alert.subject_id, worker=worker or case.assignee,
                                     actor=actor.username or actor.role, checked_in_at=arrived[0], at=at,
                                     position=Point(*position, srid=4326) if position else arrived[1],
                                     outcome=outcome, note=note)
    CareAlert.objects.filter(incident_id=case.incident_id, cleared_at__isnull=True).update(cleared_at=at)
    if outcome in ("away", "hospitalised"):
        care_period_add(subject_id=alert.subject_id, kind="away" if outcome == "away" else "hospital",
                        starts_at=at, ends_at=until or at + timedelta(days=AWAY_DAYS),
                        note=f"走访：{case.code}", actor=actor)
    return visit


# -- sensors -------------------------------------------------------------------------------------------


@transaction.atomic
def sensor_add(*, code: str, kind: str, building_code: str | None = None, lon: float | None = None,
               lat: float | None = None, gateway_code: str | None = None, subject_code: str | None = None,
               camera_code: str | None = None) -> Sensor:
    """A new sensor at a building (its point) or a position; bound to a person, a gateway and (a peephole
    sensor) the peephole camera whose passes it reports, when named."""
    from gis.spatial.models import Building, Camera

    check_values(Sensor, {"code": code, "kind": kind})
    if Sensor.objects.filter(code=code).exists():
        raise ServiceError(f"there is a sensor {code} already")
    camera = None
    if camera_code:
        camera = Camera.objects.filter(code=camera_code).first()
        if camera is None:
            raise ServiceError(f"there is no camera {camera_code}")
        if kind != "peephole_camera" or camera.purpose != "peephole":
            raise ServiceError("only a peephole_camera sensor is bound to a camera, and only to a peephole one")
    building = None
    if building_code:
        building = Building.objects.filter(code=building_code).first()
        if building is None:
            raise ServiceError(f"there is no building {building_code}")
    if building is None and (lon is None or lat is None):
        raise ServiceError("a sensor needs its building or a position (lon, lat)")
    geom = building.geom.point_on_surface if building is not None and lon is None else Point(lon, lat, srid=4326)
    sensor = Sensor.objects.create(code=code, kind=kind, building=building, geom=geom, camera=camera,
                                   gateway=_gateway(gateway_code) if gateway_code else None)
    if subject_code:
        sensor = sensor_bind(sensor_code=code, subject_code=subject_code)
    return sensor


@transaction.atomic
def sensor_bind(*, sensor_code: str, subject_code: str | None, gateway_code: str | None = None) -> Sensor:
    """Bind a sensor to a person (their home building and point come with it), or unbind it (None)."""
    sensor = Sensor.objects.select_for_update().filter(code=sensor_code).first()
    if sensor is None:
        raise ServiceError(f"there is no sensor {sensor_code}")
    if subject_code:
        subject = CareSubject.objects.filter(code=subject_code).first()
        if subject is None:
            raise ServiceError(f"there is no person under care {subject_code}")
        sensor.care_subject, sensor.building_id, sensor.geom = subject, subject.building_id, subject.geom
    else:
        sensor.care_subject = None
    if gateway_code:
        sensor.gateway = _gateway(gateway_code)
    sensor.save()
    return sensor


def _gateway(code: str) -> Gateway:
    gateway = Gateway.objects.filter(code=code).first()
    if gateway is None:
        raise ServiceError(f"there is no gateway {code}")
    return gateway


# -- who hears of what ---------------------------------------------------------------------------------


def care_announce_sweep(*, faults: list[int], warnings: list[int], cleared: list[int], at: datetime) -> int:
    """The sweep's notices, in its transaction: faults to maintenance or the network operators, a warning to
    the grid's workers, a resumed activity to the worker who has the alert. Buildings, never names."""
    sent = 0
    for fault in CareFault.objects.filter(pk__in=faults).select_related("sensor", "gateway", "building"):
        device = fault.sensor.code if fault.sensor_id else fault.gateway.code
        where = fault.building.name if fault.building_id else ""
        title = "网络故障：网关离线" if fault.kind == "network" else "设备故障：待维护"
        sent += notify(key=f"care-fault:{fault.id}", channel=IN_APP,
                       recipient=NETWORK if fault.kind == "network" else MAINTENANCE, subject=("care_fault", fault.id),
                       payload={"title": title, "text": f"{title}（{device}，{fault.reason}）{where}",
                                "device": device, "reason": fault.reason, "building": where})
    by_grid: dict[int | None, list[CareAlert]] = {}
    for alert in CareAlert.objects.filter(pk__in=warnings).select_related("subject__building").order_by("id"):
        by_grid.setdefault(alert.grid_id, []).append(alert)
    for grid_id, raised in by_grid.items():  # one notice per worker and sweep, however many warnings
        workers = list(GridWorker.objects.filter(grid_id=grid_id, on_duty=True)) or \
            list(GridWorker.objects.filter(grid_id=grid_id))
        buildings = sorted({a.subject.building.name for a in raised if a.subject.building_id})
        text = f"{'、'.join(buildings[:5])}{'等' if len(buildings) > 5 else ''}有{len(raised)}位关爱对象长时间无活动，请留意"
        for worker in workers:
            sent += notify(key=f"care-warning:{raised[0].id}:{worker.code}", channel=IN_APP,
                           recipient=f"worker:{worker.code}", subject=("care_alert", raised[0].id),
                           payload={"title": "关爱预警：长时间无活动", "buildings": buildings, "count": len(raised),
                                    "text": text})
    for alert in CareAlert.objects.filter(pk__in=cleared, incident__isnull=False).select_related("incident__case"):
        case = getattr(alert.incident, "case", None)
        if case is None or case.assignee_id is None or case.state not in (S.dispatched, S.acknowledged):
            continue
        sent += notify(key=f"care-resumed:{alert.id}", channel=IN_APP, recipient=f"worker:{case.assignee.code}",
                       subject=("case", case.id),
                       payload={"title": f"关爱对象活动已恢复 {case.code}", "case_id": case.id,
                                "text": f"{case.code}：传感器已检测到活动，请走访确认后反馈"})
    return sent
