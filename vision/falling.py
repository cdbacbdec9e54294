"""The falling-object detector (高空抛物): stages wired together, events with a start/update/end lifecycle.

Per frame: shake estimate → foreground blobs in the façade region → tracks.
A track that passes the gravity gate while alive starts an event (so evidence
recording can begin); when it ends it is judged again on its whole length, the
classifier gives its confidence, and its trajectory is extrapolated back to the
release point → floor and window column on the façade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vision.calibration import Calibration
from vision.classifier import FallingClassifier, TrackSample
from vision.config import DetectorConfig
from vision.events import VisionEvent
from vision.physics import BallisticFit, gravity_gate
from vision.sources import Frame
from vision.stages import ForegroundDetector, Stabiliser, Track, Tracker

EVENT_TYPE = "falling_object"
NOMINAL_HEIGHT_M = 30.0  # an uncalibrated view is taken to span this many metres top to bottom
MAX_BACK_EXTRAPOLATION_S = 1.5
MIN_TRACK_FILL = 0.7  # share of a track's frames it must have a detection in
STITCH_FRAMES = 15  # longest gap between two pieces of one object's track


@dataclass(frozen=True)
class Lifecycle:
    """One step of an event's life: ``start`` (gate passed), ``update`` (track grew), ``end``."""

    kind: str
    event_id: int
    first_frame: int
    last_frame: int
    event: VisionEvent | None = None  # on ``end``: the accepted event, or None when it was rejected
    reason: str = ""


class FallingObjectDetector:
    """Turns frames into falling-object lifecycle steps."""

    def __init__(self, *, calibration: Calibration | None, width: int, height: int,
                 config: DetectorConfig, classifier: FallingClassifier):
        self.config = config
        self.classifier = classifier
        self.nominal = calibration is None or calibration.facade is None
        self.calibration = nominal_calibration(width, height) if self.nominal else calibration
        masks = calibration.masks if calibration is not None else ()
        self.foreground = ForegroundDetector(region=_clip_region(self.calibration.facade_polygon(), width, height),
                                             masks=masks, width=width, height=height, config=config)
        x0, y0, x1, y1 = self.foreground.outer
        self.stabiliser = Stabiliser(width=x1 - x0, height=y1 - y0, target_width=config.stabilise_width,
                                     enabled=config.stabilise)
        self.tracker = Tracker(max_gap_frames=config.max_gap_frames)
        self._started: dict[int, int] = {}  # track id -> event id
        self._next_event = 1
        self._accepted: list[dict[int, tuple[float, float]]] = []
        self._pieces: list[Track] = []  # recently ended dense tracks that were not reported
        self._v_top = self.calibration.facade_extent_m()[3]
        self.rejections: dict[str, int] = {}

    def process(self, frame: Frame) -> list[Lifecycle]:
        """Run the stages on one frame; returns the lifecycle steps it caused."""
        import cv2

        x0, y0, x1, y1 = self.foreground.outer
        crop = frame.image[y0:y1, x0:x1]
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
        shift = self.stabiliser.estimate(grey)
        detections = self.foreground.detect(grey, shift, frame=frame.index, t=frame.t,
                                            brightness=self.stabiliser.brightness)
        ended = self.tracker.update(detections, frame=frame.index)
        steps = [self._end(track) for track in ended if len(track) >= self.config.min_track_frames
                 or track.id in self._started]
        for track in self.tracker.tracks:
            if track.misses == 0:
                steps.extend(self._watch(track))
        return [s for s in steps if s is not None]

    def finish(self) -> list[Lifecycle]:
        """End every open track (the video is over)."""
        return [s for s in (self._end(t) for t in self.tracker.finish()
                             if len(t) >= self.config.min_track_frames or t.id in self._started) if s is not None]

    # -- lifecycle ---------------------------------------------------------------

    def _watch(self, track: Track) -> list[Lifecycle]:
        n = len(track)
        first, last = track.detections[0].frame, track.last.frame
        if track.id in self._started:
            return [Lifecycle("update", self._started[track.id], first, last)]
        # cheap pre-check before the gate: the blob must have moved down by a few pixels
        if n < self.config.min_track_frames or n % 3 or track.last.y - track.detections[0].y < 4:
            return []
        if n / (last - first + 1) < MIN_TRACK_FILL or not self._gate(track).passed:
            return []
        event_id = self._next_event
        self._next_event += 1
        self._started[track.id] = event_id
        return [Lifecycle("start", event_id, first, last)]

    def _end(self, track: Track) -> Lifecycle | None:
        event_id = self._started.pop(track.id, None)
        if event_id is None and track.last.y - track.detections[0].y < 4:
            return None  # never moved down: not worth a gate
        track = self._trimmed(track)
        first, last = track.detections[0].frame, track.last.frame
        fill = len(track) / (last - first + 1)
        if fill < MIN_TRACK_FILL:  # rain and noise chain up into sparse tracks; a real object is seen steadily
            return self._reject(event_id, first, last, f"sparse track: seen in {fill:.0%} of its frames")
        gate = self._gate(track)
        if event_id is None:
            stitched = self._stitched(track)
            joined = self._gate(stitched) if stitched is not track else None
            if joined is not None and (joined.passed or not gate.passed):
                track, gate, first = stitched, joined, stitched.detections[0].frame
        if not gate.passed:
            return self._reject(event_id, first, last, f"gravity gate: {gate.reason}")
        sample = self._sample(track)
        confidence = self.classifier.falling_probability(sample)
        if confidence < self.config.min_confidence:
            return self._reject(event_id, first, last, f"classifier: P(falling) = {confidence:.2f}")
        event = self._event(track, gate.fit, confidence)
        if self._duplicate(track):
            return self._reject(event_id, first, last, "duplicate of a track of the same object")
        self._pieces = [p for p in self._pieces if p.id != track.id]
        self._accepted = self._accepted[-19:] + [{p.frame: (p.x, p.y) for p in track.detections}]
        if event_id is None:  # judged only at its end: start and end at once
            event_id = self._next_event
            self._next_event += 1
        return Lifecycle("end", event_id, first, last, event=event)

    def _stitched(self, track: Track) -> Track:
        """This track joined to the dense pieces before it that end just above where it starts.

        An object that crosses a wall of its own colour vanishes for a few frames, and its track
        breaks; each piece alone may be too short to show gravity. Only dense pieces (each seen
        steadily) are joined, so rain cannot be strung together this way.
        """
        d = list(track.detections)
        joined = True
        while joined:
            joined = False
            head = d[0]
            for piece in reversed(self._pieces):
                tail = piece.detections[-1]
                gap = head.frame - tail.frame
                if 0 < gap <= STITCH_FRAMES and abs(head.x - tail.x) <= 40 and tail.y - 5 <= head.y <= tail.y + 30 * gap:
                    d = list(piece.detections) + d
                    self._pieces.remove(piece)
                    joined = True
                    break
        stitched = track if len(d) == len(track.detections) else Track(id=track.id, detections=d)
        self._pieces = (self._pieces + [stitched])[-30:]
        return stitched

    def _trimmed(self, track: Track) -> Track:
        """The track without a ragged tail: after an object is lost a track may pick up stray blobs."""
        d = track.detections
        for _ in range(3):
            if len(d) < 2 * self.config.min_track_frames:
                break
            fill = len(d) / (d[-1].frame - d[0].frame + 1)
            gaps = [k for k in range(1, len(d)) if d[k].frame - d[k - 1].frame > 1]
            if fill >= MIN_TRACK_FILL and (not gaps or self._gate(Track(track.id, d)).passed):
                break
            cut = gaps[-1] if gaps else len(d)
            if cut < self.config.min_track_frames:
                break
            d = d[:cut]
        return track if d is track.detections else Track(id=track.id, detections=list(d))

    def _reject(self, event_id: int | None, first: int, last: int, reason: str) -> Lifecycle | None:
        key = reason.split(":")[0]
        self.rejections[key] = self.rejections.get(key, 0) + 1
        if event_id is None:
            return None
        return Lifecycle("end", event_id, first, last, event=None, reason=reason)

    # -- judging ------------------------------------------------------------------

    def _facade_track(self, track: Track) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t, x, y = track.arrays()
        uv = self.calibration.image_to_facade_many(np.column_stack([x, y]))
        return t, uv[:, 0], uv[:, 1]

    def _gate(self, track: Track):
        t, u, v = self._facade_track(track)
        return gravity_gate(t, u, v, config=self.config)

    def _sample(self, track: Track) -> TrackSample:
        t, u, v = self._facade_track(track)
        d = track.detections
        mid = d[len(d) // 2]
        u2, v2 = self.calibration.image_to_facade(mid.x + 1.0, mid.y)
        m_per_px = max(math.hypot(u2 - u[len(d) // 2], v2 - v[len(d) // 2]), 1e-4)
        return TrackSample(
            t=t, u=u, v=v, m_per_px=m_per_px,
            area=np.array([p.area for p in d], float), w=np.array([p.w for p in d], float),
            h=np.array([p.h for p in d], float),
        )

    def _event(self, track: Track, fit: BallisticFit, confidence: float) -> VisionEvent:
        d = track.detections
        t_release = fit.release_time(earliest=d[0].t - MAX_BACK_EXTRAPOLATION_S)
        v_release = min(max(fit.v_at(t_release), fit.v_at(fit.t0)), self._v_top)
        u_release = fit.u_at(t_release)
        ox, oy = self.calibration.facade_to_image(u_release, v_release)
        floor = column = location = None
        if not self.nominal:
            world = self.calibration.facade_point_to_world(u_release, v_release)
            floor, column = world.floor, self.calibration.column_at(u_release)
            location = {"lon": round(world.lon, 7), "lat": round(world.lat, 7)}
        return VisionEvent(
            type=EVENT_TYPE, t_start=round(d[0].t, 3), t_end=round(d[-1].t, 3), confidence=round(confidence, 3),
            frames=(d[0].frame, d[-1].frame), trajectory=tuple((round(p.x, 1), round(p.y, 1)) for p in d),
            origin_image=(round(ox, 1), round(oy, 1)), floor=floor, column=column, location=location,
            evidence=None,
        )

    def _duplicate(self, track: Track) -> bool:
        """Is this track another piece of an object already reported (split blob, or a track that broke)?"""
        mine = {p.frame: (p.x, p.y) for p in track.detections}
        first = track.detections[0]
        for theirs in self._accepted:
            common = [k for k in mine if k in theirs]
            if common and np.mean([math.dist(mine[k], theirs[k]) for k in common]) < 30:
                return True
            end = max(theirs)
            ex, ey = theirs[end]
            # picks up below where the reported one was lost, a moment later
            if 0 < first.frame - end <= 2 * self.config.max_gap_frames + 6 and abs(first.x - ex) < 40 and first.y > ey - 10:
                return True
        return False


def nominal_calibration(width: int, height: int) -> Calibration:
    """A stand-in for an uncalibrated view: the whole frame as a façade NOMINAL_HEIGHT_M metres tall."""
    s = NOMINAL_HEIGHT_M / height
    return Calibration.from_dict({
        "image_size": [width, height],
        "facade": {
            "origin": [0.0, 0.0], "azimuth_deg": 90.0, "floor_height_m": 3.0, "ground_floor": 1,
            "image_points": [[0, 0], [width, 0], [width, height], [0, height]],
            "facade_points": [[0, height * s], [width * s, height * s], [width * s, 0], [0, 0]],
        },
    })


def _clip_region(polygon: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.column_stack([np.clip(polygon[:, 0], 0, width), np.clip(polygon[:, 1], 0, height)])
