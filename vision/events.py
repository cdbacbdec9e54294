"""What the detectors report: one vision event, its JSON form (the contract of DESIGN.md), its lifecycle steps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VisionEvent:
    """One event; ``to_json`` is one line of ``onemap vision analyze``."""

    type: str  # "falling_object"
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
        }


@dataclass(frozen=True)
class Lifecycle:
    """One step of an event's life: ``start`` (gate passed), ``update`` (track grew), ``end``.

    Every detector stage speaks in these steps, so the streaming core can record evidence
    and write incidents for any of them (falling objects now, fire and smoke later).
    """

    kind: str
    event_id: int  # unique within one detector instance
    first_frame: int
    last_frame: int
    event: VisionEvent | None = None  # on ``end``: the accepted event, or None when it was rejected
    reason: str = ""
