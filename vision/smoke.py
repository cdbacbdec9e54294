"""The dense-smoke stage of the fire detector (浓烟): grey, veiling, rising, lasting regions against a learnt background.

:class:`SmokeStage` runs inside :class:`vision.fire.FireDetector`, on the fire detector's working
image shrunk further to ``SmokeConfig.work_width``, so that flame and smoke of one fire are one
event. Per frame:

1. background: a slow running average of the grey image (``background_seconds``), learnt
   ten times slower where the frame is moving foreground, so a plume is not absorbed in seconds
   (still foreground, such as the ghost of someone who has left, is learnt at the full rate);
2. lighting: the frame is compared with the background after a robust global fit
   ``frame ≈ gain · background + offset`` (auto-exposure, daylight, uniform fog or haze all fit
   it and leave no foreground);
3. foreground: pixels that differ from the fitted background by ``min_difference`` grey levels
   and did not gain colour (smoke is grey to white to black: it lowers or keeps saturation);
4. regions, each judged on:
   - *blur*: smoke veils what is behind it, so the local contrast (gradient energy over mean
     brightness) falls against the background's; a cloud shadow darkens but keeps contrast;
   - *turbulence*: the region keeps changing inside (mean frame-to-frame change);
   - *rise*: its inner motion (a least-squares optical flow of the whole region) goes up;
   - *no travel*: its centroid does not cross the frame like a car or a walker;
5. persistence: regions are followed by overlap; one that qualifies in most frames of
   ``confirm_seconds`` is confirmed (a steam puff is gone in two seconds) and stays reported while
   it keeps qualifying.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.config import SmokeConfig

QUALIFY_SHARE = 0.6  # share of the confirmation frames a smoke region must qualify in
KEEP_SHARE = 0.2  # ... and, once confirmed, keep qualifying in to stay reported
FOREGROUND_SLOWDOWN = 10.0  # the background learns this many times slower under foreground
STILL = 2.0  # grey levels of change over the lag below which a pixel is still
TEXTURED = 4.0  # least background gradient energy (grey levels per pixel) at which blur is measured


@dataclass
class SmokeRegion:
    """One smoke candidate of one frame, in the caller's pixels, with what it was judged on."""

    box: tuple[int, int, int, int]  # x, y, w, h
    area: float
    centroid: tuple[float, float]
    contrast: float  # local contrast now over the background's (1 = unchanged, lower = veiled)
    turbulence: float  # mean absolute frame-to-frame change inside, grey levels
    rise: float  # upward speed of its inner motion, frame heights per second (averaged over the window)
    drift: float  # sideways speed of its inner motion, frame heights per second (averaged over the window)
    travel: float  # centroid travel over the window, in region sizes
    first_frame: int = 0  # of the track it belongs to
    qualified: bool = False
    confirmed: bool = False
    reason: str = ""


@dataclass
class _Track:
    id: int
    box: tuple[int, int, int, int]
    first_frame: int
    last_seen: int
    history: list = field(default_factory=list)  # (frame, qualified, centroid, size, rise, drift)
    confirmed: bool = False


class SmokeStage:
    """Per-frame smoke regions of an image of a fixed size; ``process`` returns them all, confirmed ones flagged."""

    def __init__(self, *, width: int, height: int, fps: float, config: SmokeConfig | None = None,
                 excluded: np.ndarray | None = None):
        import cv2

        self.config = c = config or SmokeConfig()
        self.fps = fps if fps and fps > 0 else 25.0
        self.scale = min(1.0, c.work_width / width)  # caller's pixels -> smoke pixels
        self.size = (max(8, round(width * self.scale)), max(8, round(height * self.scale)))
        self.window = max(3, round(c.window_seconds * self.fps))
        self.min_area = c.min_area_fraction * self.size[0] * self.size[1]
        self.max_area = c.max_area_fraction * self.size[0] * self.size[1]
        self.rate = 1.0 / max(1.0, c.background_seconds * self.fps)
        self._excluded = None if excluded is None else cv2.resize(
            excluded.astype(np.uint8), self.size, interpolation=cv2.INTER_NEAREST).astype(bool)
        self._background = None
        self._background_sat = None
        self._prev = None
        self.lag = max(1, round(self.fps / 5))  # turbulence is the change over a fifth of a second
        self._history: list[np.ndarray] = []
        self._foreground = np.zeros(self.size[::-1], bool)
        self._tracks: list[_Track] = []
        self._next_track = 1
        self._seen = 0

    def process(self, image: np.ndarray, index: int) -> list[SmokeRegion]:
        """Judge one frame (BGR at the caller's size); regions in the caller's pixels."""
        import cv2

        same = image.shape[1] == self.size[0] and image.shape[0] == self.size[1]
        small = image if same else cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32), (3, 3), 0)
        sat = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)[..., 1].astype(np.float32)
        self._seen += 1
        if self._background is None:
            self._background, self._background_sat, self._prev = grey.copy(), sat.copy(), grey
            return []
        fitted = self._fitted_background(grey)
        foreground = self._foreground_mask(grey, fitted, sat)
        regions = []
        learnt = self._seen >= self.config.warmup_seconds * self.fps
        if learnt:
            regions = self._regions(grey, fitted, foreground)
            self._follow(regions, index)
        before = self._history[0] if self._history else self._prev
        self._learn(grey, sat, foreground & (np.abs(grey - before) >= STILL))
        self._prev = grey
        self._history = (self._history + [grey])[-self.lag:]
        inv = 1.0 / self.scale
        for r in regions:
            x, y, w, h = r.box
            r.box = (round(x * inv), round(y * inv), round(w * inv), round(h * inv))
            r.centroid = (r.centroid[0] * inv, r.centroid[1] * inv)
            r.area *= inv * inv
        return regions

    # -- background and lighting -------------------------------------------------------

    def _fitted_background(self, grey: np.ndarray) -> np.ndarray:
        """The background after the least-squares gain and offset that best explain the frame (trimmed)."""
        b, g = self._background[::2, ::2].ravel(), grey[::2, ::2].ravel()
        keep = ~self._foreground[::2, ::2].ravel()
        if keep.sum() < 0.2 * keep.size:
            keep[:] = True
        gain, offset = 1.0, 0.0
        for _ in range(2):  # fit, drop the worst fifth (a plume, a car, a shadow), fit again
            bb, gg = b[keep], g[keep]
            var = float(bb.var())
            if var < 1.0:
                break
            gain = float(np.clip(np.mean((bb - bb.mean()) * (gg - gg.mean())) / var, 0.3, 3.0))
            offset = float(gg.mean() - gain * bb.mean())
            residual = np.abs(g - (gain * b + offset))
            keep = keep & (residual <= np.quantile(residual[keep], 0.8) + 2.0)
        return gain * self._background + offset

    def _foreground_mask(self, grey, fitted, sat) -> np.ndarray:
        import cv2

        c = self.config
        differs = np.abs(grey - fitted) >= c.min_difference
        greyish = (sat <= c.max_saturation) & (sat <= self._background_sat + c.max_saturation_gain)
        mask = (differs & greyish).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        if self._excluded is not None:
            mask[self._excluded] = 0
        self._foreground = mask.astype(bool)
        return self._foreground

    def _learn(self, grey, sat, moving_foreground) -> None:
        # still foreground is learnt at the full rate: what a departed person or car left behind (a ghost)
        # is not smoke, which never stands still
        rate = np.where(moving_foreground, self.rate / FOREGROUND_SLOWDOWN, self.rate).astype(np.float32)
        if self._seen < self.config.warmup_seconds * self.fps:
            rate = np.maximum(rate, 1.0 / self._seen)  # the first seconds: learn fast
        self._background += rate * (grey - self._background)
        self._background_sat += rate * (sat - self._background_sat)

    # -- regions ---------------------------------------------------------------------------

    def _regions(self, grey, fitted, foreground) -> list[SmokeRegion]:
        import cv2

        count, labels, stats, centroids = cv2.connectedComponentsWithStats(foreground.astype(np.uint8), connectivity=8)
        if count <= 1:
            return []
        energy_now = _contrast(grey)
        energy_bg = _contrast(fitted)
        texture_bg = _gradient_energy(fitted)
        before = self._history[0] if self._history else self._prev
        change = np.abs(grey - before)
        flow = cv2.calcOpticalFlowFarneback(before.astype(np.uint8), grey.astype(np.uint8), None, 0.5, 2, 9, 2, 5,
                                            1.1, 0)
        per_second = self.fps / len(self._history or [0]) / self.size[1]  # pixels per lag -> frame heights per second
        upward, sideways = -flow[..., 1] * per_second, flow[..., 0] * per_second
        out = []
        for k in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[k])
            if area < self.min_area or area > self.max_area:
                continue
            inside = labels[y:y + h, x:x + w] == k
            textured = inside & (texture_bg[y:y + h, x:x + w] >= TEXTURED)
            if textured.sum() >= 0.2 * area:
                contrast = float(np.median(energy_now[y:y + h, x:x + w][textured])
                                 / max(np.median(energy_bg[y:y + h, x:x + w][textured]), 1e-3))
            else:  # a flat background (sky): smoke keeps it flat, an object brings edges
                contrast = float(np.median(energy_now[y:y + h, x:x + w][inside])
                                 / max(np.median(energy_bg[y:y + h, x:x + w][inside]), 0.02))
            turbulence = float(change[y:y + h, x:x + w][inside].mean())
            weight = change[y:y + h, x:x + w][inside]  # where the region changes: its billows and its edge
            total = max(float(weight.sum()), 1e-6)
            rise = float((upward[y:y + h, x:x + w][inside] * weight).sum() / total)
            drift = float((sideways[y:y + h, x:x + w][inside] * weight).sum() / total)
            region = SmokeRegion(box=(x, y, w, h), area=float(area), centroid=tuple(centroids[k]), contrast=contrast,
                                 turbulence=turbulence, rise=rise, drift=drift, travel=0.0)
            out.append(region)
        return out

    # -- following, persistence --------------------------------------------------------------

    def _follow(self, regions: list[SmokeRegion], index: int) -> None:
        c = self.config
        used: set[int] = set()
        need = max(1, round(c.confirm_seconds * self.fps))
        for r in sorted(regions, key=lambda r: -r.area):
            track = max((t for t in self._tracks if t.id not in used and grown_overlap(t.box, r.box) > 0),
                        key=lambda t: grown_overlap(t.box, r.box), default=None)
            if track is None:
                track = _Track(id=self._next_track, box=r.box, first_frame=index, last_seen=index)
                self._next_track += 1
                self._tracks.append(track)
            used.add(track.id)
            track.box, track.last_seen = r.box, index
            recent = [h for h in track.history if index - h[0] < self.window]
            rises, drifts = [h[4] for h in recent] + [r.rise], [h[5] for h in recent] + [r.drift]
            r.rise, r.drift = float(np.mean(rises)), float(np.mean(drifts))
            if recent:
                (x0, y0), size = recent[0][2], max(r.box[2], r.box[3], 1)
                r.travel = float(np.hypot(r.centroid[0] - x0, r.centroid[1] - y0)) / size
            r.reason = ("not veiled" if r.contrast > c.max_contrast
                        else "still" if r.turbulence < c.min_turbulence
                        else "not rising" if r.rise < c.min_rise
                        else "sideways" if abs(r.drift) > c.max_sideways * r.rise
                        else "travelling" if r.travel > c.max_travel
                        else "")
            r.qualified = not r.reason
            track.history.append((index, r.qualified, r.centroid, max(r.box[2], r.box[3]), rises[-1], drifts[-1]))
            del track.history[:-(need + self.window)]
            qualified = sum(1 for h in track.history if index - h[0] < need and h[1])
            if not track.confirmed:
                track.confirmed = index - track.first_frame + 1 >= need and qualified >= QUALIFY_SHARE * need
            # once confirmed, reported while it still qualifies now and then: a plume has quiet moments
            r.confirmed = track.confirmed and qualified >= KEEP_SHARE * need
            r.first_frame = track.first_frame
        self._tracks = [t for t in self._tracks if index - t.last_seen <= self.window]


def _gradient_energy(grey: np.ndarray) -> np.ndarray:
    """Mean absolute gradient over a 5 × 5 neighbourhood, grey levels per pixel."""
    import cv2

    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.blur(np.abs(gx) + np.abs(gy), (5, 5)) / 8.0


def _contrast(grey: np.ndarray) -> np.ndarray:
    """Local contrast: gradient energy over local mean brightness (unchanged by a shadow's or a lamp's gain)."""
    import cv2

    return _gradient_energy(grey) / (cv2.blur(grey, (5, 5)) + 30.0)


def grown_overlap(a: tuple, b: tuple) -> float:
    """Intersection area of two (x, y, w, h) boxes, the first grown by a quarter of its size on each side.

    How a region is matched to the track it continues, here and in :mod:`vision.fire`.
    """
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ax, ay, aw, ah = ax - aw / 4, ay - ah / 4, aw * 1.5, ah * 1.5
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    return max(0.0, w) * max(0.0, h)
