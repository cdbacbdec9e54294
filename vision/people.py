"""People at the door and in the courtyard: person-shaped motion, tracked into passes (one per person).

Per frame:

1. **motion**: MOG2 background subtraction (30 s of memory, so someone standing at a door stays
   foreground a while) on a copy ``motion_width`` wide, shadows dropped, opened and dilated. A
   frame mostly moving is a change of light (a lamp switched on or off): nothing is looked for and
   the background is learnt afresh from it;
2. **person shape**: moving parts one above the other are joined (a shirt the colour of the wall
   leaves a head and a pair of legs apart); a shape is a person when it is tall enough
   (``min_height_fraction`` of the frame), upright (``min_aspect``), narrower in its top sixth
   (the head) than lower down, and moving in most of its rows. A shape as wide as several people
   is split into as many; a part lying within a much taller shape is dropped;
3. **tracking**: a detection joins the track whose predicted box (constant velocity) it overlaps
   most; a track missed for a frame lives on while its box still moves; ``confirm_hits``
   detections over at least ``confirm_seconds`` and a travel of ``min_travel`` of its height make
   it a person (a ``start`` step: people come into view, a door swinging does not travel).
   Unseen and still for ``end_seconds``, or seen but still for ``max_still_seconds``, it ends; a new
   track that starts within ``rejoin_seconds`` where it ended inside the picture (someone hidden
   by another for a moment, or standing long enough to fade into the background) continues it,
   otherwise its pass ends (an ``end`` step with a ``person`` event).

Why not OpenCV's HOG people detector: the locked ``opencv-python-headless`` is OpenCV 5.1, whose
``objdetect`` no longer has ``HOGDescriptor`` (moved to opencv_contrib); no other pretrained
person model may be downloaded. The shape test is measured in ``tests/bench/vision_people.py``.

No face is looked at and no image of a person is kept: the stage says ``keeps_evidence = False``
and the streaming core records no clip, keyframe or record for it; an event carries two times,
an image box and a foot-point trajectory, nothing that tells who it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vision.config import PeopleConfig
from vision.events import Lifecycle, VisionEvent
from vision.sources import Frame

EVENT_TYPE = "person"
MATCH_IOU = 0.2
MOVING_SHARE = 0.08  # share of a track's box that must be moving for a missed track to live on
# a blob whose moving pixels are mostly flame-coloured (the fire detector's thresholds) is a fire, not a person
FLAME_SHARE, FLAME_SATURATION, FLAME_VALUE, FLAME_CORE_VALUE = 0.5, 110, 120, 235


@dataclass(frozen=True)
class PersonDetection:
    """One person-shaped moving blob in full-resolution pixels."""

    box: tuple[int, int, int, int]  # x, y, w, h
    weight: float  # how person-shaped (0–1): narrower at the head, solid


@dataclass
class _Track:
    id: int
    box: np.ndarray  # x, y, w, h (float)
    first_frame: int
    first_t: float
    last_frame: int  # the last frame it was detected or still moving in
    last_t: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    hits: int = 0
    last_hit: int = -1
    weights: list = field(default_factory=list)
    trajectory: list = field(default_factory=list)  # (frame, foot x, foot y)
    largest: tuple = (0, 0, 0, 0)
    event_id: int | None = None  # set once confirmed (or on rejoining an ended pass)
    origin: np.ndarray | None = None  # centre of its first detection
    travel: float = 0.0  # farthest its detections have been from there (pixels)
    still_since: int | None = None  # the frame since which nothing has moved in its box

    def predicted(self, index: int) -> np.ndarray:
        box = self.box.copy()
        box[:2] += self.velocity * (index - self.last_frame)
        return box


@dataclass
class _Pass:
    """A confirmed pass whose track has gone; it ends for good after ``rejoin_seconds``."""

    event_id: int
    track: _Track
    gone_frame: int


class PeopleDetector:
    """Turns frames into ``person`` lifecycle steps, one event per person passing; ``detections``: the last frame's."""

    keeps_evidence = False  # no clip, no keyframe, no crop of a person: the core records nothing for this stage

    def __init__(self, *, width: int, height: int, config: PeopleConfig | None = None, fps: float = 25.0,
                 calibration=None):
        import cv2

        self.config = config or PeopleConfig()
        self.calibration = calibration
        self.nominal = True  # the core marks no floor on keyframes from this stage
        self.width, self.height = width, height
        self.fps = fps if fps and fps > 0 else 25.0
        self.scale = min(1.0, self.config.motion_width / width)
        self.small = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        self.min_area_small = self.config.min_motion_fraction * self.small[0] * self.small[1]
        # a long memory: someone standing at the door for a while stays foreground
        self._background = cv2.createBackgroundSubtractorMOG2(history=max(50, int(self.config.background_seconds
                                                                                  * self.fps)),
                                                              varThreshold=25, detectShadows=True)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._joiner = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 9))
        self._tracks: list[_Track] = []
        self._passes: list[_Pass] = []
        self._next_track = 1
        self._small: np.ndarray | None = None
        self._next_event = 1
        self._seen = 0
        self.end_frames = max(1, round(self.config.end_seconds * self.fps))
        self.confirm_frames = round(self.config.confirm_seconds * self.fps)
        self.rejoin_frames = round(self.config.rejoin_seconds * self.fps)
        self.still_frames = round(self.config.max_still_seconds * self.fps)
        self.detections: list[PersonDetection] = []
        self.rejections: dict[str, int] = {}

    # -- public ------------------------------------------------------------------

    def process(self, frame: Frame) -> list[Lifecycle]:
        """Detect and track people in one frame; returns the lifecycle steps it caused."""
        moving = self._motion(frame.image)
        if moving is None:
            self.detections = []
            return self._age(frame.index)
        self.detections = self._detect(moving)
        steps = self._follow(self.detections, moving, frame)
        return steps + self._age(frame.index)

    def finish(self) -> list[Lifecycle]:
        """End every open pass (the video is over)."""
        steps = []
        for track in self._tracks:
            if track.event_id is not None:
                self._passes.append(_Pass(track.event_id, track, track.last_frame))
        self._tracks = []
        for p in sorted(self._passes, key=lambda p: p.event_id):
            steps.append(self._end(p))
        self._passes = []
        return steps

    @property
    def live(self) -> int:
        """People (confirmed tracks) in view now."""
        return sum(1 for t in self._tracks if t.event_id is not None)

    # -- stage 1: motion ------------------------------------------------------------

    def _motion(self, image: np.ndarray) -> np.ndarray | None:
        import cv2

        small = image if self.scale == 1.0 else cv2.resize(image, self.small, interpolation=cv2.INTER_AREA)
        self._small = small
        self._seen += 1
        mask = self._background.apply(small)
        moving = mask == 255  # 127 is a shadow
        if self._seen > 2 and moving.mean() > self.config.light_change_fraction:
            self._background.apply(small, learningRate=1.0)  # the light changed: this is the background now
            self.rejections["light change"] = self.rejections.get("light change", 0) + 1
            return None
        clean = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, self._kernel)
        return cv2.dilate(clean, self._kernel, iterations=2)

    # -- stage 2: person-shaped motion --------------------------------------------------

    def _detect(self, moving: np.ndarray) -> list[PersonDetection]:
        """Person-shaped moving blobs: tall enough, upright, narrower at the head than at the body; a blob as
        wide as several people standing side by side is split into as many."""
        import cv2

        c = self.config
        joined = cv2.morphologyEx(moving, cv2.MORPH_CLOSE, self._joiner)  # legs, body and head into one
        count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        inv = 1.0 / self.scale
        min_h = c.min_height_fraction * self.small[1]
        found = []
        for (x, y, w, h), members in _stacked([tuple(int(v) for v in stats[k][:4]) for k in range(1, count)],
                                              [int(stats[k][4]) for k in range(1, count)], self.min_area_small / 4):
            area = sum(int(stats[m + 1][4]) for m in members)
            if h < min_h or area < self.min_area_small:
                self._reject("too small")
                continue
            if h > c.max_height_fraction * self.small[1] and w > 0.8 * self.small[0]:
                self._reject("too large")  # the whole picture moving: a door close by, the light
                continue
            n = max(1, round(w / (c.person_width * h)))  # people side by side in one blob ...
            if n > 1 and h < 1.5 * min_h:
                n = 1  # ... only where it is tall enough to be people at all (a dog is long and low)
            if n == 1 and h < c.min_aspect * w:
                self._reject("not upright")  # a pet, a door's shadow on the floor
                continue
            blob = np.isin(labels[y:y + h, x:x + w], [m + 1 for m in members])
            if self._flame_coloured(blob, x, y):
                self._reject("flame-coloured")  # a fire flickers upright too: the fire stage's, not a person
                continue
            for part in range(n):
                x0, x1 = part * w // n, (part + 1) * w // n
                score = _person_shape(blob[:, x0:x1])
                if score <= 0:
                    self._reject("no head")
                    continue
                found.append(PersonDetection(box=(round((x + x0) * inv), round(y * inv), round((x1 - x0) * inv),
                                                  round(h * inv)), weight=score))
        return _suppress(found)

    def _flame_coloured(self, blob: np.ndarray, x: int, y: int) -> bool:
        """Is most of the moving blob flame-coloured (the fire detector's colour test)? A person in an orange
        shirt is orange in part; a flame nearly all over."""
        from vision.fire import flame_colour

        if self._small is None or self._small.ndim != 3 or not blob.any():
            return False
        h, w = blob.shape
        colour, _ = flame_colour(self._small[y:y + h, x:x + w], min_saturation=FLAME_SATURATION,
                                 min_value=FLAME_VALUE, core_value=FLAME_CORE_VALUE)
        return float(colour[blob].mean()) > FLAME_SHARE

    def _reject(self, reason: str) -> None:
        self.rejections[reason] = self.rejections.get(reason, 0) + 1

    # -- stage 4: tracking --------------------------------------------------------------

    def _follow(self, detections: list[PersonDetection], moving: np.ndarray, frame: Frame) -> list[Lifecycle]:
        index = frame.index
        pairs = sorted(((_iou(t.predicted(index), d.box), ti, di) for ti, t in enumerate(self._tracks)
                        for di, d in enumerate(detections)), reverse=True)
        used_t, used_d = set(), set()
        for iou, ti, di in pairs:
            if iou < MATCH_IOU or ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            self._hit(self._tracks[ti], detections[di], frame)
        for ti, track in enumerate(self._tracks):
            if self._moving_in(moving, track.predicted(index) if ti not in used_t else track.box):
                track.still_since = None
                if ti not in used_t:
                    track.box = track.predicted(index)
                    track.last_frame, track.last_t = index, frame.t
            elif track.still_since is None:
                track.still_since = index
        people = [_grown(t.box, 0.15) for t in self._tracks if t.event_id is not None]
        for di, d in enumerate(detections):
            # a part of someone already followed (a swinging bag, legs apart) starts no track of its own
            if di not in used_d and not any(_inside(d.box, box) >= 0.5 for box in people):
                track = _Track(id=self._next_track, box=np.array(d.box, float), first_frame=index, first_t=frame.t,
                               last_frame=index, last_t=frame.t)
                self._next_track += 1
                self._tracks.append(track)
                self._hit(track, d, frame)
        steps = []
        for track in self._tracks:
            if (track.event_id is None and track.hits >= self.config.confirm_hits
                    and track.last_hit == index and index - track.first_frame >= self.confirm_frames
                    and track.travel >= self.config.min_travel * track.box[3]):
                steps += self._confirm(track)
        return steps

    def _hit(self, track: _Track, d: PersonDetection, frame: Frame) -> None:
        new = np.array(d.box, float)
        if track.hits:
            gap = max(1, frame.index - track.last_frame)
            moved = (new[:2] + new[2:] / 2 - track.box[:2] - track.box[2:] / 2) / gap
            track.velocity = 0.6 * track.velocity + 0.4 * moved
            new = 0.5 * new + 0.5 * track.predicted(frame.index)
        track.box = new
        centre = new[:2] + new[2:] / 2
        if track.origin is None:
            track.origin = centre
        track.travel = max(track.travel, float(np.hypot(*(centre - track.origin))))
        track.hits += 1
        track.last_hit = frame.index
        track.last_frame, track.last_t = frame.index, frame.t
        track.weights.append(d.weight)
        x, y, w, h = d.box
        if w * h > track.largest[2] * track.largest[3]:
            track.largest = d.box
        if not track.trajectory or frame.index - track.trajectory[-1][0] >= self.fps / 2:
            track.trajectory.append((frame.index, round(x + w / 2, 1), round(y + h * 0.9, 1)))

    def _moving_in(self, moving: np.ndarray, box: np.ndarray) -> bool:
        x, y, w, h = (np.asarray(box) * self.scale).round().astype(int)
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(moving.shape[1], x + w), min(moving.shape[0], y + h)
        if x1 <= x0 or y1 <= y0:
            return False
        return float(moving[y0:y1, x0:x1].mean()) >= MOVING_SHARE

    def _confirm(self, track: _Track) -> list[Lifecycle]:
        """A person: continue a pass that ended where this track began a moment ago, or start a new one."""
        start = track.trajectory[0] if track.trajectory else (track.first_frame, *track.box[:2])
        size = max(track.box[3], 1.0)
        for p in self._passes:
            if self._at_border(p.track.box):
                continue  # they walked out of the picture: whoever comes in there next is someone else
            last = p.track.trajectory[-1] if p.track.trajectory else (p.gone_frame, *p.track.box[:2])
            near = math.hypot(start[1] - last[1], start[2] - last[2]) <= size
            if near and track.first_frame - p.gone_frame <= self.rejoin_frames:
                self._passes.remove(p)
                track.event_id = p.event_id
                track.first_frame, track.first_t = p.track.first_frame, p.track.first_t
                track.hits += p.track.hits
                track.weights = p.track.weights + track.weights
                track.trajectory = p.track.trajectory + track.trajectory
                if p.track.largest[2] * p.track.largest[3] > track.largest[2] * track.largest[3]:
                    track.largest = p.track.largest
                return []
        track.event_id = self._next_event
        self._next_event += 1
        return [Lifecycle("start", track.event_id, track.first_frame, track.last_frame)]

    def _at_border(self, box) -> bool:
        x, y, w, h = box
        margin = 0.1 * self.width  # a door viewer's picture fades into a dark rim at its sides
        return x <= margin or x + w >= self.width - margin

    def _age(self, index: int) -> list[Lifecycle]:
        """Drop tracks unseen for ``end_seconds``; a person's becomes a pass that may still be rejoined."""
        keep = []
        for track in self._tracks:
            if track.still_since is not None and index - track.still_since > self.still_frames:
                track.last_frame = min(track.last_frame, track.still_since)  # a thing the detector mistakes
            if index - track.last_frame <= self.end_frames:                  # for a person, or someone long gone
                keep.append(track)
            elif track.event_id is not None:
                self._passes.append(_Pass(track.event_id, track, track.last_frame))
            else:
                self.rejections["too few detections"] = self.rejections.get("too few detections", 0) + 1
        self._tracks = keep
        steps = []
        for p in list(self._passes):
            if index - p.gone_frame > self.rejoin_frames:
                self._passes.remove(p)
                steps.append(self._end(p))
        return steps

    def _end(self, p: _Pass) -> Lifecycle:
        t = p.track
        x, y, w, h = t.largest
        mean = float(np.mean(t.weights)) if t.weights else 0.0
        event = VisionEvent(
            type=EVENT_TYPE, t_start=round(t.first_t, 3), t_end=round(t.last_t, 3),
            confidence=round(1.0 / (1.0 + math.exp(-2.0 * mean)), 3), frames=(t.first_frame, t.last_frame),
            trajectory=tuple((px, py) for _, px, py in t.trajectory), origin_image=(x + w / 2, float(y + h)),
            floor=None, column=None, location=None, evidence=None, box=(int(x), int(y), int(w), int(h)),
        )
        return Lifecycle("end", p.event_id, t.first_frame, t.last_frame, event=event)


def _stacked(boxes: list[tuple[int, int, int, int]], areas: list[int], min_area: float) -> list:
    """Moving parts one above the other joined into one shape: a shirt the colour of the wall leaves a head
    and a pair of legs apart. Returns (box, indices of its parts)."""
    groups = [(b, [i]) for i, b in enumerate(boxes) if areas[i] >= min_area]
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                (ax, ay, aw, ah), (bx, by, bw, bh) = groups[i][0], groups[j][0]
                overlap = min(ax + aw, bx + bw) - max(ax, bx)
                gap = max(ay, by) - min(ay + ah, by + bh)
                if overlap >= 0.5 * min(aw, bw) and gap < 0.5 * max(ah, bh):
                    x0, y0 = min(ax, bx), min(ay, by)
                    box = (x0, y0, max(ax + aw, bx + bw) - x0, max(ay + ah, by + bh) - y0)
                    groups[i] = (box, groups[i][1] + groups[j][1])
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return groups


def _person_shape(blob: np.ndarray) -> float:
    """How much a blob looks like a standing person, > 0 when it does: its top sixth (the head) narrower
    than its widest row lower down, and most of its rows moving (a shirt like the wall may leave a gap)."""
    h = blob.shape[0]
    widths = blob.sum(axis=1).astype(float)
    if h < 6 or widths.max() <= 0:
        return 0.0
    head = widths[: max(1, h // 6)].mean()
    body = widths[h // 6:].max()
    filled = float(np.mean(widths > 0))
    narrow = 1.0 - head / max(body, 1.0)  # 0: as wide at the top as anywhere (a door panel, a box)
    return round(narrow * filled, 3) if narrow >= 0.25 and filled >= 0.6 else 0.0


def _suppress(found: list[PersonDetection]) -> list[PersonDetection]:
    """Drop a shape that lies mostly within a much taller one: a part of a person (an arm and a bag, legs
    apart from the body), not a second person."""
    kept: list[PersonDetection] = []
    for d in sorted(found, key=lambda d: -d.box[3]):
        if all(not (_inside(d.box, _grown(k.box, 0.1)) >= 0.5 and d.box[3] * 1.5 <= k.box[3]) for k in kept):
            kept.append(d)
    return kept


def _grown(box, share: float) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return (x - share * w, y - share * h, w * (1 + 2 * share), h * (1 + 2 * share))


def _iou(a, b) -> float:
    inter, area_a, area_b = _intersection(a, b)
    return inter / (area_a + area_b - inter) if inter else 0.0


def _inside(a, b) -> float:
    """Share of the smaller box covered by the other."""
    inter, area_a, area_b = _intersection(a, b)
    return inter / max(1.0, min(area_a, area_b)) if inter else 0.0


def _intersection(a, b) -> tuple[float, float, float]:
    """Area shared by two (x, y, w, h) boxes, and the two boxes' areas."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    return (w * h if w > 0 and h > 0 else 0.0), aw * ah, bw * bh
