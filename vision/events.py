"""What the detectors report: one vision event, its JSON form (the contract of DESIGN.md), its lifecycle steps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VisionEvent:
    """One event; ``to_json`` is one line of ``onemap vision analyze``."""

    type: str  # "falling_object", "fire_smoke" or "illegal_parking"
    t_start: float  # seconds from the start of the video
    t_end: float
    confidence: float
    frames: tuple[int, int]  # first and last frame index of the track
    trajectory: tuple[tuple[float, float], ...]  # image (x, y) of each detection
    origin_image: tuple[float, float]  # back-extrapolated release point in the image
    floor: int | None
    column: int | None
    location: dict | None  # {"lon": ..., "lat": ...} where the façade is calibrated
    evidence: dict | None  # {"clip", "keyframe", "record", "sha256"}
    box: tuple[int, int, int, int] | None = None  # fire_smoke: the region (x, y, w, h) at its largest
    zone: dict | None = None  # illegal_parking: the no-parking zone {code, reason, name, limit_s, stood_s}


    def to_json(self) -> dict:
        """The event as a JSON-ready dict."""
        return {
            "type": self.type,
            "t_start": self.t_start,
            "t_end": self.t_end,
            "confidence": self.confidence,
            "frames": list(self.frames),
            "image": {"x": self.origin_image[0], "y": self.origin_image[1]},
            "origin_image": list(self.origin_image),
            "trajectory": [list(p) for p in self.trajectory],
            "floor": self.floor,
            "column": self.column,
            "location": self.location,
            "evidence": self.evidence,
        } | ({"box": list(self.box)} if self.box is not None else {}) | (
            {"zone": self.zone} if self.zone is not None else {})


@dataclass(frozen=True)
class Lifecycle:
    """One step of an event's life: ``start`` (confirmed), ``update`` (still seen), ``end``.

    Every detector stage speaks in these steps, so the streaming core can record evidence
    and write incidents for any of them (falling objects, fire and smoke).
    """

    kind: str
    event_id: int  # unique within one detector instance
    first_frame: int
    last_frame: int
    event: VisionEvent | None = None  # on ``end``: the accepted event, or None when it was rejected
    reason: str = ""
