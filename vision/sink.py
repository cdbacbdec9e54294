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
