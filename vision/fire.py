"""The fire and smoke detector (烟火告警): flame colour, flicker, persistence; events with a start/update/end lifecycle.

Per frame, on a copy at most ``work_width`` wide:

1. colour: a pixel is flame-coloured when its hue is red to yellow and it is saturated and
   bright enough, or white-hot with a warm cast (flame cores);
2. statistics over the last ``window_seconds``: how often each pixel was flame-coloured
   (presence) and its mean absolute frame-to-frame grey change (activity);
3. regions: connected parts of the footprint (pixels flame-coloured at least now and then). A
   flame has a steady core (present in nearly every frame) wrapped in a flickering fringe (present
   in some frames only) and is busy; a sunset wall or a parked orange car is all core and still,
   a blinking tail light or a beacon is all fringe and no core, and an orange shirt walking by
   sweeps a fringe whose colour centroid drifts by more than its width;
4. persistence: regions are followed from frame to frame by overlap; one that qualifies in most
   frames for ``confirm_seconds`` starts the camera's fire event. Later regions join the same
   event (one fire, one incident) until none has qualified for ``end_seconds``.

The event's box is the union of its regions at their largest; its point is the box's bottom
centre through the ground calibration, or its centre through the façade calibration (with the
floor); with neither the sink places it from the camera's position and heading.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.calibration import Calibration, CalibrationError
from vision.config import FireConfig
from vision.events import Lifecycle, VisionEvent
from vision.smoke import SmokeRegion, SmokeStage, grown_overlap
from vision.sources import Frame

EVENT_TYPE = "fire_smoke"
WARM_HUE_MAX = 25  # OpenCV hue (0–180): red through orange to yellow ...
WARM_HUE_WRAP = 172  # ... and the reds just below 180
CORE_PRESENCE = 0.9  # a pixel present this often is part of the steady core
FOOTPRINT_PRESENCE = 0.15  # ... this often, part of the footprint
QUALIFY_SHARE = 0.7  # share of the confirmation frames a region must qualify in
MAX_TRAJECTORY_POINTS = 60


@dataclass
class FireRegion:
    """One region of one frame, in full-resolution pixels, with the statistics it was judged on."""

    box: tuple[int, int, int, int]  # x, y, w, h
    area: float  # pixels of its footprint, full resolution
    centroid: tuple[float, float]  # of the flame-coloured pixels now
    flicker: float
    core: float
    activity: float
    hot: float = 0.0  # share of its footprint white-hot now (a flame is a light source)
    rate: float = 0.0  # colour changes per second of a fringe pixel
    surround: float = 0.0  # mean activity in a ring around it (a passer-by moves beyond the region)
    qualified: bool = False
    reason: str = ""


@dataclass
class _Track:
    id: int
    box: tuple[int, int, int, int]
    first_frame: int
    last_seen: int
    history: list = field(default_factory=list)  # (frame, qualified, centroid, width)
    confirmed: bool = False


@dataclass
class _Event:
    id: int
    first_frame: int
    start_frame: int  # the frame at which it was confirmed
    last_frame: int
    t_first: float
    t_last: float
    box: tuple[int, int, int, int]
    first_area: float
    max_area: float
    flicker: list = field(default_factory=list)
    trajectory: list = field(default_factory=list)


class FireDetector:
    """Turns frames into fire_smoke lifecycle steps; ``regions`` holds the current frame's qualifying regions."""

    def __init__(self, *, calibration: Calibration | None, width: int, height: int, config: FireConfig | None = None,
                 fps: float = 25.0):
        self.config = config or FireConfig()
        self.calibration = calibration
        self.width, self.height = width, height
        self.fps = fps if fps and fps > 0 else 25.0
        self.scale = min(1.0, self.config.work_width / width)
        self.small = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        self.window = max(3, round(self.config.window_seconds * self.fps))
        self.min_area_small = self.config.min_area_fraction * self.small[0] * self.small[1]
        self._masks = np.zeros((self.window, self.small[1], self.small[0]), np.uint8)
        self._diffs = np.zeros((self.window, self.small[1], self.small[0]), np.uint8)
        self._presence = np.zeros((self.small[1], self.small[0]), np.int32)
        self._activity = np.zeros((self.small[1], self.small[0]), np.int32)
        self._flips = np.zeros((self.window, self.small[1], self.small[0]), np.uint8)
        self._flip_count = np.zeros((self.small[1], self.small[0]), np.int32)
        self._prev_mask = None
        self._excluded = self._mask_image(calibration)
        self._prev_grey = None
        self._small_image = None
        self._seen = 0
        self._tracks: list[_Track] = []
        self._next_track = 1
        self._next_event = 1
        self._event: _Event | None = None
        self.regions: list[FireRegion] = []  # qualifying regions of the last frame (for benchmarks and overlays)
        self.smoke_regions: list[SmokeRegion] = []  # confirmed smoke regions of the last frame, full resolution
        # smoke is slow: it is judged on every ``stride``-th frame only, at about ``smoke.max_rate`` frames a second
        self._smoke_stride = max(1, round(self.fps / self.config.smoke.max_rate))
        self._smoke = None
        if self.config.smoke.enabled:
            self._smoke = SmokeStage(width=self.small[0], height=self.small[1], fps=self.fps / self._smoke_stride,
                                     config=self.config.smoke, excluded=self._excluded)
        self.rejections: dict[str, int] = {}

    # -- public ------------------------------------------------------------------

    def process(self, frame: Frame) -> list[Lifecycle]:
        """Run the stages on one frame; returns the lifecycle steps it caused."""
        regions = self._regions(frame.image)
        self._follow(regions, frame.index)
        self.regions = [r for r in regions if r.qualified]
        for r in regions:
            if not r.qualified:
                self.rejections[r.reason] = self.rejections.get(r.reason, 0) + 1
        self.smoke_regions = self._smoke_regions(frame.index)
        return self._lifecycle(frame)

    def finish(self) -> list[Lifecycle]:
        """End the open event (the video is over)."""
        if self._event is None:
            return []
        return [self._end()]

    def _smoke_regions(self, index: int) -> list[SmokeRegion]:
        """The smoke stage on this frame's working image: its confirmed regions, in full-resolution pixels."""
        if self._smoke is None or self._small_image is None:
            return []
        if index % self._smoke_stride:
            return self.smoke_regions  # between judged frames the last judgement stands
        inv = 1.0 / self.scale
        out = []
        for r in self._smoke.process(self._small_image, index // self._smoke_stride):
            if r.reason:
                key = f"smoke: {r.reason}"
                self.rejections[key] = self.rejections.get(key, 0) + 1
            if r.confirmed:
                x, y, w, h = r.box
                r.box = (round(x * inv), round(y * inv), round(w * inv), round(h * inv))
                r.centroid, r.area = (r.centroid[0] * inv, r.centroid[1] * inv), r.area * inv * inv
                r.first_frame *= self._smoke_stride
                out.append(r)
        return out

    # -- stage 1–3: colour, statistics, regions ------------------------------------

    def _regions(self, image: np.ndarray) -> list[FireRegion]:
        import cv2

        c = self.config
        small = image if self.scale == 1.0 else cv2.resize(image, self.small, interpolation=cv2.INTER_AREA)
        if small.ndim == 2:  # a grey camera shows no flame colour
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        self._small_image = small
        colour, hot = flame_colour(small, min_saturation=c.min_saturation, min_value=c.min_value,
                                   core_value=c.core_value)
        if self._excluded is not None:
            colour &= ~self._excluded
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        diff = cv2.absdiff(grey, self._prev_grey) if self._prev_grey is not None else np.zeros_like(grey)
        self._prev_grey = grey
        slot = self._seen % self.window
        mask = colour.astype(np.uint8)
        self._presence += mask.astype(np.int32) - self._masks[slot]
        self._activity += diff.astype(np.int32) - self._diffs[slot]
        flips = (mask ^ self._prev_mask) if self._prev_mask is not None else np.zeros_like(mask)
        self._flip_count += flips.astype(np.int32) - self._flips[slot]
        self._masks[slot], self._diffs[slot], self._flips[slot], self._prev_mask = mask, diff, flips, mask
        self._seen += 1
        n = min(self._seen, self.window)
        if n < max(3, self.window // 3):
            return []  # too little history to tell flicker from a still colour
        presence = self._presence / n
        footprint = (presence >= FOOTPRINT_PRESENCE).astype(np.uint8)
        footprint = cv2.morphologyEx(footprint, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(footprint, connectivity=8)
        out = []
        inv = 1.0 / self.scale
        for k in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[k])
            if area < self.min_area_small:
                continue
            sub = labels[y:y + h, x:x + w] == k
            p = presence[y:y + h, x:x + w][sub]
            core = float(np.mean(p >= CORE_PRESENCE))
            fringe = (p > 0) & (p < CORE_PRESENCE)
            flicker = float(np.mean(fringe))
            flips = self._flip_count[y:y + h, x:x + w][sub]
            # colour changes per second of a fringe pixel: flames flicker at several hertz, a passer-by
            # hides a thing once
            rate = float(flips[fringe].mean() * self.fps / n) if fringe.any() else 0.0
            activity = float(self._activity[y:y + h, x:x + w][sub].mean() / n)
            surround = self._surround_activity(x, y, w, h, labels == k) / n
            now = colour[y:y + h, x:x + w] & sub
            hot_share = float(np.mean(hot[y:y + h, x:x + w][sub]))
            ys, xs = np.nonzero(now)
            centroid = ((x + xs.mean() + 0.5) * inv, (y + ys.mean() + 0.5) * inv) if len(xs) else (
                (x + w / 2) * inv, (y + h / 2) * inv)
            region = FireRegion(box=(round(x * inv), round(y * inv), round(w * inv), round(h * inv)),
                                area=area * inv * inv, centroid=centroid, flicker=flicker, core=core,
                                activity=activity, surround=surround, rate=rate,
                                hot=hot_share)
            region.reason = ("no steady core" if core < c.min_core else "no flicker" if flicker < c.min_flicker
                             else "still" if activity < c.min_activity
                             else "moving surroundings" if activity < c.min_contrast * surround else "")
            region.qualified = not region.reason
            out.append(region)
        return out

    def _surround_activity(self, x: int, y: int, w: int, h: int, inside: np.ndarray) -> float:
        """Mean summed activity in the box grown by half its size on each side, outside the region."""
        H, W = inside.shape
        x0, y0 = max(0, x - w // 2 - 2), max(0, y - h // 2 - 2)
        x1, y1 = min(W, x + w + w // 2 + 2), min(H, y + h + h // 2 + 2)
        ring = ~inside[y0:y1, x0:x1]
        return float(self._activity[y0:y1, x0:x1][ring].mean()) if ring.any() else 0.0

    # -- stage 4: following regions, persistence ----------------------------------------

    def _follow(self, regions: list[FireRegion], index: int) -> None:
        c = self.config
        used: set[int] = set()
        for r in regions:
            track = max((t for t in self._tracks if t.id not in used and grown_overlap(t.box, r.box) > 0),
                        key=lambda t: grown_overlap(t.box, r.box), default=None)
            if track is None:
                track = _Track(id=self._next_track, box=r.box, first_frame=index, last_seen=index)
                self._next_track += 1
                self._tracks.append(track)
            used.add(track.id)
            track.box, track.last_seen = r.box, index
            track.history.append((index, r.qualified, r.centroid, max(r.box[2], r.box[3])))
            keep = self.window + int(c.confirm_seconds * self.fps) + 1
            del track.history[:-keep]
            if r.qualified and self._drifting(track):
                r.qualified, r.reason = False, "drifting"
                track.history[-1] = (index, False, r.centroid, track.history[-1][3])
        gone = self.window
        self._tracks = [t for t in self._tracks if index - t.last_seen <= gone]

    def _drifting(self, track: _Track) -> bool:
        """Has the region's colour centroid travelled more than ``max_drift`` of its size over the window?"""
        past = [h for h in track.history if track.history[-1][0] - h[0] <= self.window]
        if len(past) < 3:
            return False
        (_, _, (x0, y0), _), (_, _, (x1, y1), size) = past[0], past[-1]
        return float(np.hypot(x1 - x0, y1 - y0)) > self.config.max_drift * max(size, 1)

    def _confirmed(self, track: _Track, index: int) -> bool:
        need = max(1, int(round(self.config.confirm_seconds * self.fps)))
        recent = [h for h in track.history if index - h[0] < need]
        if index - track.first_frame + 1 < need or not recent or not recent[-1][1]:
            return False
        return sum(1 for h in recent if h[1]) >= QUALIFY_SHARE * need

    # -- lifecycle ---------------------------------------------------------------

    def _lifecycle(self, frame: Frame) -> list[Lifecycle]:
        index = frame.index
        steps: list[Lifecycle] = []
        ev = self._event
        seen = bool(self.regions or self.smoke_regions)
        if ev is not None and seen:
            self._grow(ev, frame)
        if ev is None:
            confirmed = [t for t in self._tracks if t.last_seen == index and self._confirmed(t, index)]
            flame = bool(confirmed and self.regions)
            if flame or self.smoke_regions:  # flame or smoke, whichever is sure first, starts the one event
                first = min(([t.first_frame for t in confirmed] if flame else [])
                            + [r.first_frame for r in self.smoke_regions])
                first_t = frame.t - (index - first) / self.fps
                box = _union(self._boxes())
                area = sum(r.area for r in self.regions + self.smoke_regions)
                self._event = _Event(id=self._next_event, first_frame=first, start_frame=index, last_frame=index,
                                     t_first=max(first_t, 0.0), t_last=frame.t, box=box, first_area=area,
                                     max_area=area)
                self._next_event += 1
                self._grow(self._event, frame)
                steps.append(Lifecycle("start", self._event.id, first, index))
            return steps
        if seen:
            steps.append(Lifecycle("update", ev.id, ev.first_frame, index))
        elif (index - ev.last_frame) / self.fps >= self.config.end_seconds:
            steps.append(self._end())
        return steps

    def _boxes(self) -> list[tuple[int, int, int, int]]:
        """This frame's flame and confirmed smoke boxes."""
        return [r.box for r in self.regions] + [r.box for r in self.smoke_regions]

    def _grow(self, ev: _Event, frame: Frame) -> None:
        area = sum(r.area for r in self.regions + self.smoke_regions)
        box = _union(self._boxes())
        if area >= ev.max_area:
            ev.max_area, ev.box = area, box
        ev.last_frame, ev.t_last = frame.index, frame.t
        ev.flicker.append(max((r.flicker for r in self.regions), default=0.0))
        x, y, w, h = box
        if not ev.trajectory or frame.index - ev.trajectory[-1][0] >= self.fps / 2:
            ev.trajectory.append((frame.index, round(x + w / 2, 1), round(y + h / 2, 1)))

    def _end(self) -> Lifecycle:
        ev, self._event = self._event, None
        event = self._vision_event(ev)
        return Lifecycle("end", ev.id, ev.first_frame, ev.last_frame, event=event)

    def _vision_event(self, ev: _Event) -> VisionEvent:
        x, y, w, h = ev.box
        base = (x + w / 2, float(y + h))
        centre = (x + w / 2, y + h / 2)
        floor = location = None
        cal = self.calibration
        try:
            if cal is not None and cal.ground is not None:
                lon, lat = cal.image_to_ground(*base)
                location = {"lon": round(lon, 7), "lat": round(lat, 7)}
            elif cal is not None and cal.facade is not None:
                world = cal.facade_to_world(*centre)
                floor, location = world.floor, {"lon": round(world.lon, 7), "lat": round(world.lat, 7)}
        except CalibrationError:
            location = None
        duration = (ev.last_frame - ev.first_frame + 1) / self.fps
        flicker = float(np.median(ev.flicker)) if ev.flicker else 0.0
        growth = ev.max_area / max(ev.first_area, 1.0)
        confidence = min(1.0, 0.5 + 0.25 * min(1.0, flicker / 0.5) + 0.15 * min(1.0, duration / 5.0)
                         + 0.1 * min(1.0, max(0.0, growth - 1.0)))
        trajectory = tuple((px, py) for _, px, py in ev.trajectory[-MAX_TRAJECTORY_POINTS:])
        return VisionEvent(
            type=EVENT_TYPE, t_start=round(ev.t_first, 3), t_end=round(ev.t_last, 3),
            confidence=round(confidence, 3), frames=(ev.first_frame, ev.last_frame), trajectory=trajectory,
            origin_image=(round(base[0], 1), round(base[1], 1)), floor=floor, column=None, location=location,
            evidence=None, box=ev.box,
        )

    # -- helpers -----------------------------------------------------------------

    def _mask_image(self, calibration: Calibration | None) -> np.ndarray | None:
        """Pixels (working size) under the calibration's privacy/nuisance masks, never looked at."""
        if calibration is None or not calibration.masks:
            return None
        import cv2

        out = np.zeros((self.small[1], self.small[0]), np.uint8)
        for polygon in calibration.masks:
            cv2.fillPoly(out, [np.round(polygon * self.scale).astype(np.int32)], 1)
        return out.astype(bool)


def flame_colour(bgr: np.ndarray, *, min_saturation: int, min_value: int,
                 core_value: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of flame-coloured pixels (warm hue, saturated and bright, or white-hot) and of the white-hot ones."""
    import cv2

    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    warm = (hue <= WARM_HUE_MAX) | (hue >= WARM_HUE_WRAP)
    b, r = bgr[..., 0].astype(np.int16), bgr[..., 2].astype(np.int16)
    hot = (val >= core_value) & (r - b >= 20)  # a white-hot core: bright, red above blue
    hot &= warm
    return (warm & (sat >= min_saturation) & (val >= min_value)) | hot, hot


def _union(boxes: list[tuple]) -> tuple[int, int, int, int]:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
