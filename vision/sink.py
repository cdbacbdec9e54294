"""The incident sink: accepted vision events become incidents through ``gis.incidents.services``, all or nothing."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import math

from core.vocabulary import FALLING_OBJECT_CATEGORY, FIRE_SMOKE_CATEGORY, PARKING_CATEGORY
from vision.events import VisionEvent

# The incident category for objects thrown from height (高空抛物): the detector's event type.
INCIDENT_CATEGORY = FALLING_OBJECT_CATEGORY
SEVERITY = 3
FIRE_SEVERITY = 4
PARKING_SEVERITY = {"fire_lane": 3, "hydrant": 3}  # by the zone's reason; others 2
# an uncalibrated camera's fire is put this far ahead along its heading: where a camera tilted
# about 30° down looks at the ground, within bounds
FIRE_NOMINAL_TILT_DEG = 30.0
FIRE_NOMINAL_RANGE_M = (5.0, 30.0)


class SinkError(RuntimeError):
    """Incidents could not be written; none were."""


@dataclass(frozen=True)
class WrittenIncident:
    id: int
    code: str
    grid_code: str | None
    floor: int | None


def camera_for_code(code: str):
    """The camera with this code, with its calibration; a clear error when there is none."""
    from gis.models import Camera

    camera = Camera.objects.select_related("building").filter(code=code).first()
    if camera is None:
        raise SinkError(f"no camera with code {code!r}; list them with the OGC API collection 'cameras'")
    return camera


def incidents_write(*, events: list[VisionEvent], camera, started_at: datetime | None = None) -> list[WrittenIncident]:
    """Write one incident per event at its façade point with its floor and evidence, in one transaction."""
    from django.db import transaction

    from gis.cases.services import case_open
    from gis.incidents.services import incident_create
    from gis.models import Building
    from gis.services import ServiceError

    building = camera.building
    facade = (camera.calibration or {}).get("facade") or {}
    if facade.get("building") and (building is None or building.code != facade["building"]):
        building = Building.objects.filter(code=facade["building"]).first() or building
    started_at = started_at or datetime.now(timezone.utc)
    batch = secrets.token_hex(3)
    written = []
    try:
        with transaction.atomic():
            for n, event in enumerate(events, start=1):
                fire = event.type == FIRE_SMOKE_CATEGORY
                parking = event.type == PARKING_CATEGORY
                location = event.location or (_ahead_of(camera) if fire else None)
                if location is None:
                    raise SinkError(
                        f"camera {camera.code} has no façade calibration, so the event at {event.t_start:.2f} s "
                        "has no location; add a facade block to its calibration"
                    )
                incident = incident_create(
                    lon=location["lon"], lat=location["lat"],
                    category=FIRE_SMOKE_CATEGORY if fire else PARKING_CATEGORY if parking else INCIDENT_CATEGORY,
                    source="camera", code=f"INC-V-{camera.code}-{batch}-{n:02d}"[:40],
                    severity=(FIRE_SEVERITY if fire else
                              PARKING_SEVERITY.get((event.zone or {}).get("reason"), 2) if parking else SEVERITY),
                    title=_title(event, building), floor=event.floor,
                    reported_at=started_at + timedelta(seconds=event.t_start),
                    evidence=_evidence(event), camera=camera, building=building,
                    description=f"Detected by the camera pipeline (confidence {event.confidence:.2f})."
                    + ("" if event.location else " Placed from the camera's position and heading (no calibration)."),
                )
                case_open(incident_id=incident.id)  # every incident is a case, from its first moment
                written.append(WrittenIncident(id=incident.id, code=incident.code,
                                               grid_code=incident.grid.code if incident.grid_id else None,
                                               floor=incident.floor))
    except ServiceError as exc:
        raise SinkError(f"no incident was written: {exc}") from None
    return written


def _ahead_of(camera) -> dict:
    """A point on the camera's heading, where its view meets the ground (nominally): for uncalibrated fires."""
    from pyproj import Transformer

    lo, hi = FIRE_NOMINAL_RANGE_M
    distance = min(hi, max(lo, (camera.height_m or 0.0) / math.tan(math.radians(FIRE_NOMINAL_TILT_DEG))))
    to_metric = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    x, y = to_metric.transform(camera.geom.x, camera.geom.y)
    heading = math.radians(camera.heading_deg)
    lon, lat = to_metric.transform(x + distance * math.sin(heading), y + distance * math.cos(heading),
                                   direction="INVERSE")
    return {"lon": round(lon, 7), "lat": round(lat, 7)}


def _title(event: VisionEvent, building) -> str:
    if event.type == PARKING_CATEGORY:
        zone = event.zone or {}
        reason = {"fire_lane": "占用消防通道", "hydrant": "占用消防栓", "entrance": "占用出入口"}.get(
            zone.get("reason"), "禁停区停车")
        return f"违章停车：{reason}" + (f"（{zone['name']}）" if zone.get("name") else "")
    if event.type == FIRE_SMOKE_CATEGORY:
        where = (building.name or building.code) if building is not None else "摄像头视野"
        return f"烟火告警：{where}" + (f"约{event.floor}层" if event.floor is not None else "")
    where = building.name or building.code if building is not None else "façade"
    return f"高空抛物：{where}" + (f"约{event.floor}层" if event.floor is not None else "")


def _evidence(event: VisionEvent) -> dict:
    if not event.evidence:
        return {}
    ev = event.evidence
    return {"clip": ev.get("clip"), "keyframe": ev.get("keyframe"), "record": ev.get("record"),
            "sha256": ev.get("sha256"), "frames": list(event.frames), "origin_image": list(event.origin_image),
            "column": event.column, "confidence": event.confidence} | (
                {"box": list(event.box)} if event.box is not None else {}) | (
                {"zone": event.zone} if event.zone is not None else {})


def incident_evidence_add(*, incident_id: int, event: VisionEvent) -> None:
    """Attach an event's sealed evidence (clip, keyframe, chained record) to the incident written for it."""
    from gis.incidents.services import incident_evidence_attach

    incident_evidence_attach(incident_id=incident_id, evidence=_evidence(event))


# -- people passing (issue 17): a peephole's sighting, a courtyard's hourly count; never an incident -----


class UnboundPeephole(SinkError):
    """A peephole camera with no peephole sensor of a care subject bound to it: its passes count for nobody."""


@dataclass(frozen=True)
class PassesWritten:
    """What became of a batch of people passing one camera."""

    passes: int
    sightings: int = 0  # new sighting events of the door's peephole sensor
    duplicates: int = 0  # sightings already stored (the same video analysed again)
    counted: int = 0  # passes added to the camera's hourly people counts
    sensor: str | None = None
    building: str | None = None


def door_sensor_for(camera):
    """The peephole sensor of a care subject bound to this peephole camera (``sensors.camera_id``); a clear
    :class:`UnboundPeephole` when there is none."""
    from gis.models import Sensor

    sensor = (Sensor.objects.filter(camera_id=camera.id, kind="peephole_camera", care_subject__isnull=False)
              .order_by("id").first())
    if sensor is None:
        raise UnboundPeephole(
            f"peephole camera {camera.code} is bound to no peephole sensor of a care subject, so a person passing "
            "its door counts as nobody's activity; add one: onemap sensors add SEN-H-… --kind peephole_camera "
            f"--camera {camera.code} --subject CS-…"
        )
    return sensor


def people_passes_write(*, events: list[VisionEvent], camera, started_at: datetime,
                        sensor=None) -> PassesWritten:
    """Passes seen by a peephole camera become sightings of its door's sensor; by a courtyard camera, hourly
    counts for its building. Times are ``started_at`` + each pass's start; writing the same passes again
    changes nothing. Other cameras' passes are not stored."""
    passes = [e for e in events if e.type == "person"]
    if not passes:
        return PassesWritten(passes=0)
    when = [started_at + timedelta(seconds=e.t_start) for e in passes]
    if camera.purpose == "peephole":
        return _sightings_write(camera=camera, sensor=sensor or door_sensor_for(camera), when=when)
    if camera.purpose == "courtyard":
        from gis.spatial.selectors import camera_building_id
        from gis.spatial.services import people_passes_count

        building_id = camera_building_id(camera_id=camera.id)
        counted = people_passes_count(camera_id=camera.id, building_id=building_id, passes=when)
        from gis.models import Building

        code = Building.objects.filter(id=building_id).values_list("code", flat=True).first() if building_id else None
        return PassesWritten(passes=len(passes), counted=counted, building=code)
    return PassesWritten(passes=len(passes))


def _sightings_write(*, camera, sensor, when: list[datetime]) -> PassesWritten:
    from gis.care.ingest import DeviceMessage, events_record

    # the pass's time in milliseconds is its seq: unique per door (two passes never start in one
    # millisecond) and the same when the same video is analysed again, so ingest keeps one event
    messages = [DeviceMessage(kind="sensor", code=sensor.code, source="vision",
                              body={"ts": ts.isoformat(), "type": "sighting", "seq": sighting_seq(ts),
                                    "camera": camera.code})
                for ts in when]
    counts = events_record(messages=messages)
    if counts.rejected:
        raise SinkError(f"sightings of {sensor.code} refused: {'; '.join(r for _, r in counts.reasons)}")
    return PassesWritten(passes=len(when), sightings=counts.inserted, duplicates=counts.duplicates,
                         sensor=sensor.code)


def sighting_seq(ts: datetime) -> int:
    """A vision sighting's seq: its time in whole milliseconds since 1970 (UTC)."""
    return int(round(ts.timestamp() * 1000))
