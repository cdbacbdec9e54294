"""The falling-object detector (高空抛物): stages wired together, events with a start/update/end lifecycle.

Per frame: shake estimate → foreground blobs in the façade region → faint blobs
looked for again where falling tracks that found nothing expect their object →
tracks. A track that passes the gravity gate while alive starts an event (so
evidence recording can begin); when it ends it is joined to earlier pieces of the
same object, judged again on its whole length, the classifier gives its
confidence, and its trajectory is extrapolated back to the release point → floor
and window column on the façade.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import replace

import numpy as np

from vision.calibration import Calibration
from vision.classifier import FallingClassifier, TrackSample
from vision.config import DetectorConfig
from vision.events import Lifecycle, VisionEvent
from vision.physics import G, BallisticFit, GateResult, gravity_gate
from vision.sources import Frame
from vision.stages import Detection, ForegroundDetector, Stabiliser, Track, Tracker, combined_detection as _combined

EVENT_TYPE = "falling_object"
NOMINAL_HEIGHT_M = 30.0  # an uncalibrated view is taken to span this many metres top to bottom
MAX_BACK_EXTRAPOLATION_S = 1.5
MIN_TRACK_FILL = 0.7  # share of a track's frames it must have a detection in
MIN_SPARSE_FILL = 0.5  # ... or this share, for a long track that passes the gravity gate
MIN_SPARSE_FRAMES = 10
MIN_FALL_FILL = 0.35  # ... and the fall itself, from its launch, in at least this share (pieces joined across a gap)
STITCH_FRAMES = 15  # longest gap between two pieces of one object's track
REACQUIRE_MIN_FRAMES = 4  # detections a falling track needs before a lost object is looked for faintly
MIN_PIECE_FRAMES = 3  # shortest ended track kept as a piece to join
MAX_PIECES = 60
LEAP_GAP_FRAMES = 3  # a gap this long before the last blob or two of a track: were they within reach of a fall?
TOGETHER_MIN_PX = 12.0  # two tracks whose vertical offset changes by less than this (or ...
TOGETHER_SIZES = 0.5  # ... this many object sizes) over the frames both saw moved together
STACK_REACH = 2.5  # sizes of a piece by which a piece above it may lie, and be another part of one object
STILL_TAIL_FRAMES = 3  # frames after a track's last new lowest point that make a tail to cut
SETTLED_FRAMES = 10  # a track that fell and then sat this many frames in a row is ended there
SETTLED_WANDER_PX = 2.0  # ... sitting: its blob moved by at most this much
SETTLED_FALL_PX = 8.0  # ... fell: its lowest point before them was at least this far below its start
LOST_REACH_FRAMES = 25  # a track this soon after a reported object was lost, where it would be, is that object


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
        self._accepted: list[tuple[dict[int, tuple[float, float]], float]] = []  # reported: points by frame, size
        self._pieces: list[Track] = []  # recently ended dense tracks that were not reported
        self._frame = -1
        self._v_top = self.calibration.facade_extent_m()[3]
        self.rejections: dict[str, int] = {}

    def process(self, frame: Frame) -> list[Lifecycle]:
        """Run the stages on one frame; returns the lifecycle steps it caused."""
        import cv2

        self._frame = frame.index
        x0, y0, x1, y1 = self.foreground.outer
        crop = frame.image[y0:y1, x0:x1]
        colour = crop if crop.ndim == 3 else None
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if colour is not None else crop
        shift = self.stabiliser.estimate(grey)
        detections = self.foreground.detect(grey, shift, frame=frame.index, t=frame.t,
                                            brightness=self.stabiliser.brightness, colour=colour)
        detections += self._reacquired(detections, frame)
        ended = self.tracker.update(detections, frame=frame.index)
        ended += self._settled()
        steps = [self._end(track) for track in ended if len(track) >= self.config.min_track_frames
                 or track.id in self._started or self._remember(track)]
        for track in self.tracker.tracks:
            if track.misses == 0:
                steps.extend(self._watch(track))
        return [s for s in steps if s is not None]

    def finish(self) -> list[Lifecycle]:
        """End every open track (the video is over)."""
        return [s for s in (self._end(t) for t in self.tracker.finish()
                             if len(t) >= self.config.min_track_frames or t.id in self._started or self._remember(t))
                if s is not None]

    def _settled(self) -> list[Track]:
        """Tracks that fell and now sit still, taken out of the tracker: ended now rather than when the
        blob they sit on fades.

        A falling object leaves a blob behind where it was slow (the background model has not learnt
        it away yet), and its track may latch onto that blob while a new track picks the object up below.
        The new track would then be judged first, and the fall's first part, judged only when the still
        blob fades, would be a second event rather than the start the new one continues.
        """
        done = [t for t in self.tracker.tracks if t.misses == 0 and _settled(t.detections)]
        for track in done:
            self.tracker.drop(track)
        return done

    def _reacquired(self, detections: list, frame: Frame) -> list:
        """Faint detections of falling tracks that found nothing near their prediction in this frame."""
        falling = [t for t in self.tracker.tracks if len(t) >= REACQUIRE_MIN_FRAMES and t.motion[3] >= 0.5]
        if not falling:
            return []
        pred, radius = self.tracker.predictions(frame.index, falling)
        found = []
        for track, (px, py), r in zip(falling, pred, radius):
            if any(abs(d.x - px) <= 0.5 * r and abs(d.y - py) <= 0.5 * r for d in detections):
                continue  # found by the usual threshold (farther blobs may be rain or another object)
            size = track.motion[6]
            d = self.foreground.reacquire(px, py, min(r, 6.0 + 0.6 * size), frame=frame.index, t=frame.t,
                                          min_area=max(3, int(track.motion[8] // 4)))
            if d is not None and not any(math.dist((d.x, d.y), (o.x, o.y)) <= 3 + size for o in detections):
                found.append(d)  # not a blob the usual threshold found already
        return found

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
            self._remember(track)  # never moved down: not worth a gate, but it may be the start of a fall
            return None
        track = self._trimmed(track)
        first, last = track.detections[0].frame, track.last.frame
        gate = self._judged(track)
        if event_id is None or not gate.passed:
            # a track too sparse or too short to show gravity may be the rest of a fall seen in pieces
            joined = self._joined(track)
            if joined is not track:
                joined = self._trimmed(joined)  # a piece may have gone on past the track's end
                joined_gate = self._judged(joined)
                if joined_gate.passed or not gate.passed:
                    track, gate, first = joined, joined_gate, joined.detections[0].frame
            if not gate.passed:
                self._remember(track)
        if not gate.passed:
            return self._reject(event_id, first, last, gate.reason)
        # the classifier judges the fall itself, as it was trained to: not the moments held before it
        sample = self._sample(Track(track.id, track.detections[gate.fit.apex_index:]))
        confidence = self.classifier.falling_probability(sample)
        if confidence < self.config.min_confidence:
            return self._reject(event_id, first, last, f"classifier: P(falling) = {confidence:.2f}")
        event = self._event(track, gate.fit, confidence)
        if self._duplicate(track):
            self._note_reported(track)  # the object was seen here too: a later piece may go on from here
            return self._reject(event_id, first, last, "duplicate of a track of the same object")
        self._pieces = [p for p in self._pieces if p.id != track.id]
        self._note_reported(track)
        if event_id is None:  # judged only at its end: start and end at once
            event_id = self._next_event
            self._next_event += 1
        return Lifecycle("end", event_id, first, last, event=event)

    def _judged(self, track: Track) -> GateResult:
        """The gravity gate's verdict on a track, with the rejection's reason in full.

        Rain and noise chain up into sparse tracks; a real object is seen steadily, or, when it is
        faint, at least in every other frame along a clean ballistic path.
        """
        d = track.detections
        fill = _fill(d)
        sparse = GateResult(False, f"sparse track: seen in {fill:.0%} of its frames", None)
        if not _steady(d):
            return sparse
        gate = self._gate(track)
        if gate.passed:
            fall = d[gate.fit.apex_index:]  # a long steady stay before it cannot make up for a sparse fall
            if _fill(fall) >= MIN_FALL_FILL:
                return gate
            return GateResult(False, f"sparse track: its fall seen in {_fill(fall):.0%} of its frames", gate.fit)
        if fill < MIN_TRACK_FILL:
            return replace(gate, reason=f"{sparse.reason}, and {gate.reason}")
        return replace(gate, reason=f"gravity gate: {gate.reason}")

    def _remember(self, track: Track) -> bool:
        """Keep an ended, unreported track as a piece a later track may be joined to; always False."""
        if len(track) >= MIN_PIECE_FRAMES and _fill(track.detections) >= MIN_TRACK_FILL:
            self._pieces = self._joinable([p for p in self._pieces if p.id != track.id] + [track])[-MAX_PIECES:]
        return False

    def _joinable(self, pieces: list[Track]) -> list[Track]:
        """The pieces that some track could still be joined to: one alive now (however long it goes on
        for: a fall seen whole after its start may end seconds later), one yet to start, or another
        such piece, starting after the piece and within STITCH_FRAMES of its end."""
        now = max([self._frame] + [p.last.frame for p in pieces])
        later = sorted([t.detections[0].frame for t in self.tracker.tracks] + [now + 1])
        kept = set()
        for p in sorted(pieces, key=lambda p: p.detections[0].frame, reverse=True):
            first, last = p.detections[0].frame, p.last.frame
            k = bisect.bisect_right(later, first)
            if k < len(later) and later[k] <= last + STITCH_FRAMES:
                kept.add(id(p))
                bisect.insort(later, first)
        return [p for p in pieces if id(p) in kept]

    def _joined(self, track: Track) -> Track:
        """This track joined to the dense pieces before it that belong to the same object.

        An object that crosses a wall of its own colour vanishes for a few frames, or shows only as
        pieces that the tracker follows as separate tracks for a while; each piece alone may be too
        short to show gravity. A piece joins when it ends just above where the track starts, or when
        it overlaps the track in time and lies on it wherever both saw the object. Only dense pieces
        (each seen steadily) are joined, so rain cannot be strung together this way; the joined
        track must then pass the gravity gate on its own.
        """
        frames: dict[int, list[Detection]] = {}
        for p in track.detections:
            frames.setdefault(p.frame, []).append(p)
        size = float(np.median([max(p.w, p.h) for p in track.detections]))
        reach = max(12.0, 1.2 * size)
        end = track.last.frame  # an earlier piece that goes on past the track's end has lost the object
        used: list[Track] = []
        joined = True
        while joined:
            joined = False
            start = min(frames)
            head = _combined(frames[start])
            for piece in reversed(self._pieces):
                d = piece.detections
                if piece in used or d[0].frame >= start:
                    continue
                gap = start - d[-1].frame
                if gap > STITCH_FRAMES:
                    continue
                if gap > 0:
                    tail = d[-1]
                    fits = abs(head.x - tail.x) <= 40 and tail.y - 5 <= head.y <= tail.y + 30 * gap
                else:
                    common = [p for p in d if p.frame in frames]
                    fits = bool(common) and (all(math.dist((p.x, p.y), (c.x, c.y)) <= reach
                                                 for p in common for c in [_combined(frames[p.frame])])
                                             or _stacked(common, frames, size))
                if fits:
                    for p in d:
                        if p.frame <= end:
                            frames.setdefault(p.frame, []).append(p)
                    used.append(piece)
                    joined = True
                    break
        if not used:
            return track
        self._pieces = [p for p in self._pieces if p not in used]
        return Track(id=track.id, detections=[_combined(frames[k]) for k in sorted(frames)])

    def _trimmed(self, track: Track) -> Track:
        """The track without a ragged or a still tail, or a ragged head.

        After an object is lost a track may pick up stray blobs (and faint ones where it was expected to
        be: they keep a track going, but do not end one); after it lands (or leaves the view next to
        something that stays) a track may sit still on one spot. A fall makes a new lowest point every
        frame or two, so what follows the last new low is not part of it. A sparse track that passes the
        gate whole is kept whole; otherwise an object seen only now and then at first and steadily
        after a gap is judged on the steady part.
        """
        d = self._without_faint_tail(track.detections)
        y = np.fromiter((p.y for p in d), float, len(d))
        new_low = np.nonzero(y[1:] > np.maximum.accumulate(y)[:-1] + 1.0)[0]
        end = int(new_low[-1]) + 2 if len(new_low) else len(d)
        if len(d) - end >= STILL_TAIL_FRAMES and end >= self.config.min_track_frames:
            d = self._without_faint_tail(d[:end])
        for _ in range(3):
            if len(d) < 2 * self.config.min_track_frames:
                break
            gaps = [k for k in range(1, len(d)) if d[k].frame - d[k - 1].frame > 1]
            if _steady(d) and (not gaps or self._gate(Track(track.id, d)).passed):
                break
            cut = gaps[-1] if gaps else len(d)
            if len(d) - cut > max(cut, self.config.min_track_frames - 1):
                d = d[cut:]  # seen poorly at first (a light change, a wall of its colour), then steadily
                continue
            if cut < self.config.min_track_frames:
                break
            d = self._without_faint_tail(d[:cut])
        return track if len(d) == len(track.detections) else Track(id=track.id, detections=list(d))

    def _without_faint_tail(self, d: list[Detection]) -> list[Detection]:
        """The track without what only a lost track picks up at its end: faint blobs where the object
        was expected (they support a track, but are never its last word), and a blob or two after a gap
        farther below than the object could have fallen in the meantime."""
        while len(d) > self.config.min_track_frames:
            if d[-1].faint:
                d = d[:-1]
            elif self._leaps(d, len(d) - 1):
                d = d[:-1]
            elif len(d) > 3 and self._leaps(d, len(d) - 2):
                d = d[:-2]
            else:
                break
        return d

    def _leaps(self, d: list[Detection], k: int) -> bool:
        """Does detection ``k`` lie, after a gap, farther below its predecessor than a fall could take it?"""
        a, b = d[k - 1], d[k]
        if b.frame - a.frame < LEAP_GAP_FRAMES or k < 3:
            return False
        speed = max(max(0.0, (d[j].y - d[j - 1].y) / max(d[j].t - d[j - 1].t, 1e-3)) for j in (k - 1, k - 2))
        dt = b.t - a.t
        g_px = self.config.gravity_max * G / self._m_per_px(a.x, a.y)
        size = max(a.w, a.h)
        return b.y - a.y > speed * dt + 0.5 * g_px * dt * dt + 3.0 + 0.5 * size

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
        d = track.detections
        mid = d[len(d) // 2]
        size_px = float(np.median([max(p.w, p.h) for p in d]))
        return gravity_gate(t, u, v, config=self.config, size_m=size_px * self._m_per_px(mid.x, mid.y))

    def _m_per_px(self, x: float, y: float) -> float:
        """Façade metres per image pixel (along the image x axis) at an image point."""
        u1, v1 = self.calibration.image_to_facade(x, y)
        u2, v2 = self.calibration.image_to_facade(x + 1.0, y)
        return max(math.hypot(u2 - u1, v2 - v1), 1e-4)

    def _sample(self, track: Track) -> TrackSample:
        t, u, v = self._facade_track(track)
        d = track.detections
        mid = d[len(d) // 2]
        m_per_px = self._m_per_px(mid.x, mid.y)
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

    def _note_reported(self, track: Track) -> None:
        """Keep a reported track's points and its object's size, for telling later tracks of it apart."""
        size = float(np.median([max(p.w, p.h) for p in track.detections]))
        self._accepted = self._accepted[-19:] + [({p.frame: (p.x, p.y) for p in track.detections}, size)]

    def _duplicate(self, track: Track) -> bool:
        """Is this track another piece of an object already reported (split blob, or a track that broke)?"""
        mine = {p.frame: (p.x, p.y) for p in track.detections}
        first = track.detections[0]
        size = float(np.median([max(p.w, p.h) for p in track.detections]))
        d = track.detections
        frame_s = (d[-1].t - d[0].t) / (d[-1].frame - d[0].frame) if d[-1].frame > d[0].frame else 0.04
        for theirs, their_size in self._accepted:
            common = [k for k in mine if k in theirs]
            end = max(theirs)
            g = G / self._m_per_px(*theirs[end]) * frame_s ** 2  # gravity, pixels per frame²
            band = (self.config.gravity_min * g, self.config.gravity_max * g)
            apart = float(np.mean([math.dist(mine[k], theirs[k]) for k in common])) if common else math.inf
            if apart < 30:
                # within the object's size of it, or farther but moving with it (another piece of a big
                # object); when they shared too few frames to tell, going on where it would have gone
                after = [p for p in track.detections if p.frame > end]
                if (apart < max(12.0, size, their_size) or _together(mine, theirs, common, size)
                        or len(common) < 3 and (not after or _on_course(theirs, after[:5], size, band))):
                    return True
            ex, ey = theirs[end]
            # picks up below where the reported one was lost, a moment later, as fast, and where its
            # fall would have taken it: an object let go from a window below a moment later starts from
            # rest, and one let go from above passes the lost one's spot later than it would have
            if (0 < first.frame - end <= LOST_REACH_FRAMES and abs(first.x - ex) < 40
                    and first.y > ey - 10
                    and _downward_speed([(p.frame, p.y) for p in track.detections[:4]])
                    >= 0.5 * _downward_speed([(k, theirs[k][1]) for k in sorted(theirs)[-4:]])
                    and _on_course(theirs, track.detections[:5], size, band)):
                return True
        return False


def _together(mine: dict[int, tuple[float, float]], theirs: dict[int, tuple[float, float]], common: list[int],
              size: float) -> bool:
    """Did two tracks move together where both were seen, as pieces of one object do (their offset
    wanders within the object's size)? Two objects let go a moment apart fall at different speeds."""
    if len(common) < 3:
        return False  # too few frames to tell: only being close says they are one object
    dy = np.array([mine[k][1] - theirs[k][1] for k in common])
    return float(np.ptp(dy)) <= max(TOGETHER_MIN_PX, TOGETHER_SIZES * size)


def _on_course(theirs: dict[int, tuple[float, float]], points: list[Detection], size: float,
               gravity_px: tuple[float, float]) -> bool:
    """Are ``points`` (most of them) where the object of a reported track, falling on, could be by then?

    From its last position and speed, it falls on at an acceleration within ``gravity_px`` (the gate's
    band, pixels per frame²); its speed is taken both from its last frames and over its last eight,
    as a track that fades at its end seems to slow down.
    """
    frames = sorted(theirs)[-8:]
    if len(frames) < 4:
        return True
    k = np.array(frames, float)
    y = np.array([theirs[f][1] for f in frames])
    c2, c1, c0 = np.polyfit(k - k[-1], y, 2)
    mean_speed = (y[-1] - y[0]) / (k[-1] - k[0])
    slow, fast = sorted((c1, mean_speed))
    off = []
    for p in points:
        ahead = p.frame - k[-1]
        lo = c0 + max(slow, 0.0) * ahead + 0.5 * gravity_px[0] * ahead * ahead
        hi = c0 + max(fast, 0.0) * ahead + 0.5 * gravity_px[1] * ahead * ahead
        off.append(max(lo - p.y, p.y - hi, 0.0) - (10.0 + size))
    return float(np.median(off)) <= 0.0


def _stacked(common: list[Detection], frames: dict[int, list[Detection]], size: float) -> bool:
    """Does a piece lie just above the track, in its column, in every frame both saw?

    A large object of nearly the wall's colour shows only where it covers windows: each covered window
    is a blob that sits still while the object passes, and the windows below light up one after another.
    """
    if len(common) < 2:
        return False
    for p in common:
        c = _combined(frames[p.frame])
        if not (abs(p.x - c.x) <= max(8.0, 0.8 * size) and 0.0 < c.y - p.y <= STACK_REACH * size + 8.0):
            return False
    return True


def _settled(d: list[Detection]) -> bool:
    """Did a track fall and then sit still for its last SETTLED_FRAMES frames in a row?"""
    if len(d) < SETTLED_FRAMES + 4 or d[-1].frame - d[-SETTLED_FRAMES].frame != SETTLED_FRAMES - 1:
        return False
    tail = d[-SETTLED_FRAMES:]
    xs, ys = [p.x for p in tail], [p.y for p in tail]
    if max(xs) - min(xs) > SETTLED_WANDER_PX or max(ys) - min(ys) > SETTLED_WANDER_PX:
        return False
    return max(p.y for p in d[:-SETTLED_FRAMES]) - d[0].y >= SETTLED_FALL_PX


def _fill(d: list[Detection]) -> float:
    """Share of the frames from a track's first detection to its last that have one."""
    return len(d) / (d[-1].frame - d[0].frame + 1)


def _steady(d: list[Detection]) -> bool:
    """Seen steadily, or, for a long track, in at least every other frame."""
    fill = _fill(d)
    return fill >= MIN_TRACK_FILL or (fill >= MIN_SPARSE_FILL and len(d) >= MIN_SPARSE_FRAMES)


def _downward_speed(points: list[tuple[int, float]]) -> float:
    """Downward image speed (px per frame) from the first to the last of (frame, y) points."""
    (f0, y0), (f1, y1) = points[0], points[-1]
    return (y1 - y0) / max(f1 - f0, 1)


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
