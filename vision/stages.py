"""Pipeline stages, one job each: stabilisation, foreground blobs, and a multi-object tracker.

Stabilisation works on a shrunken frame; the foreground is found at full
resolution, only inside the calibrated façade region and outside the masks, so
objects of a few pixels survive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vision.config import DetectorConfig


@dataclass(frozen=True)
class Shift:
    """Where the current frame sits relative to the reference view, in full-resolution pixels."""

    dx: float
    dy: float
    reliable: bool


@dataclass(frozen=True)
class Detection:
    """One foreground blob, in reference (stabilised) image coordinates."""

    frame: int
    t: float
    x: float
    y: float
    area: int
    w: int
    h: int
    faint: bool = False  # found at a lowered threshold where a track expected it: it never starts a track


@dataclass
class Track:
    """Detections of one object over consecutive frames."""

    id: int
    detections: list[Detection] = field(default_factory=list)
    misses: int = 0
    # (x, y, vx, vy, ax, ay, size, last frame, typical area, new?): kept up to date by ``add``
    motion: tuple = field(default=(), repr=False)

    def __post_init__(self):
        if self.detections:
            self.motion = _motion(self.detections)

    def add(self, detection: Detection) -> None:
        self.detections.append(detection)
        self.motion = _motion(self.detections)

    @property
    def last(self) -> Detection:
        return self.detections[-1]

    def __len__(self) -> int:
        return len(self.detections)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Times (s) and image x, y of every detection."""
        d = self.detections
        return (np.fromiter((p.t for p in d), float, len(d)), np.fromiter((p.x for p in d), float, len(d)),
                np.fromiter((p.y for p in d), float, len(d)))


# -- stabilisation -----------------------------------------------------------------


class Stabiliser:
    """Estimates the frame's translation against a reference view by phase correlation on a small grey copy.

    It looks at the façade's bounding box (plus a margin), where the texture is, shrunk so the
    correlation stays cheap; the grey copy is float before shrinking, since rounding to whole grey
    levels biases phase correlation on smooth walls.
    """

    REANCHOR_FRAMES = 250  # a fresh reference now and then follows slow scene changes
    # the applied shift follows the estimate only when it moves this far, so a steady camera's
    # estimation noise does not resample (and blur) every frame differently
    HYSTERESIS_PX = 0.3
    DEAD_ZONE_PX = 0.5
    PATCH_PX = 96  # full-resolution patches that refine the coarse estimate
    PATCH_MARGIN_PX = 16
    PATCHES = 1
    RECENTRE_PX = 3.0  # a shake beyond this is measured again from a patch moved by the first reading

    def __init__(self, *, width: int, height: int, target_width: int, enabled: bool = True):
        """``width`` × ``height`` is the size of the grey region ``estimate`` is given."""
        self.enabled = enabled
        budget = target_width * target_width * 9 / 16  # pixels of a target_width 16:9 frame
        # shrink by a power of two to even sides: other sizes bias OpenCV's phase correlation
        factor = 1
        while width * height / factor ** 2 > budget and factor < 64:
            factor *= 2
        step = 2 * factor
        self.used = (width // step * step, height // step * step)
        self.scale = 1.0 / factor
        self.small_size = (self.used[0] // factor, self.used[1] // factor)
        self._ref = None
        self._base = (0.0, 0.0)
        self._since_anchor = 0
        self._window = self._patch_window = None
        self._patches: list = []
        self._applied = (0.0, 0.0)
        self.brightness = 0.0

    def estimate(self, grey: np.ndarray) -> Shift:
        """The shift of this grey region relative to the reference view (zero when disabled)."""
        import cv2

        grey = grey[: self.used[1], : self.used[0]]
        self.brightness = float(cv2.mean(grey)[0])
        if not self.enabled:
            return Shift(0.0, 0.0, True)
        if self._ref is None:
            self._anchor(self._small(grey), grey, (0.0, 0.0))
            return Shift(0.0, 0.0, True)
        # the full-resolution patch usually suffices; the coarse whole-region correlation is the
        # fallback when it loses track. It is read at the reference position, not from the last
        # estimate: sub-pixel phase correlation leans towards whole-pixel offsets, so starting from the
        # last estimate let a steady camera's estimate wander off pixel by pixel. Only a large shake
        # is read a second time from where the first reading put it.
        rel = self._refine(grey, 0.0, 0.0)
        if rel is not None and math.hypot(*rel) > self.RECENTRE_PX:
            rel = self._refine(grey, rel[0], rel[1]) or rel
        response = 1.0
        if rel is None:
            small = self._small(grey)
            (sx, sy), response = _phase_correlate(self._ref, small, self._window)
            rel = self._refine(grey, sx / self.scale, sy / self.scale) or (sx / self.scale, sy / self.scale)
        dx, dy = self._base[0] + rel[0], self._base[1] + rel[1]
        self._since_anchor += 1
        if self._since_anchor >= self.REANCHOR_FRAMES and response > 0.2:
            self._anchor(self._small(grey), grey, (dx, dy))
        ax, ay = self._applied
        if math.hypot(dx, dy) < self.DEAD_ZONE_PX:
            # below a pixel the edge-aware threshold absorbs the shake, and an estimate this small may
            # be the pull of a passing object rather than the camera moving
            ax, ay = 0.0, 0.0
        elif math.hypot(dx - ax, dy - ay) > self.HYSTERESIS_PX:
            ax, ay = dx, dy
        self._applied = (ax, ay)
        return Shift(float(ax), float(ay), response > 0.05)

    def _small(self, grey: np.ndarray) -> np.ndarray:
        import cv2

        small = grey if self.scale == 1.0 else cv2.resize(grey, self.small_size, interpolation=cv2.INTER_AREA)
        return small.astype(np.float32)

    def _anchor(self, small: np.ndarray, grey: np.ndarray, base: tuple[float, float]) -> None:
        """Make this frame the reference; keep full-resolution patches where the texture is richest.

        One patch per third of the width: a falling object crosses one of them at a time, and the
        median of the three ignores it.
        """
        import cv2

        self._ref, self._base, self._since_anchor = small, base, 0
        if self._window is None:
            self._window = cv2.createHanningWindow(self.small_size, cv2.CV_32F)
        h, w = grey.shape[:2]
        p, m = self.PATCH_PX, self.PATCH_MARGIN_PX
        self._patches = []
        if h < p + 2 * m or w < p + 2 * m:
            return
        candidates = []
        for fx in (1 / 6, 1 / 2, 5 / 6):
            for fy in (0.2, 0.4, 0.6, 0.8):
                px = int(min(max(fx * w - p / 2, m), w - p - m))
                py = int(min(max(fy * h - p / 2, m), h - p - m))
                texture = float(cv2.Laplacian(grey[py:py + p, px:px + p], cv2.CV_32F).std())
                candidates.append((texture, px, py))
        for _, px, py in sorted(candidates, reverse=True)[: self.PATCHES]:
            self._patches.append((px, py, grey[py:py + p, px:px + p].astype(np.float32)))
        if self._patch_window is None:
            self._patch_window = cv2.createHanningWindow((p, p), cv2.CV_32F)

    def _refine(self, grey: np.ndarray, cx: float, cy: float) -> tuple[float, float] | None:
        """The shift near (cx, cy): the median over the full-resolution patches; None when unsure."""
        p, m = self.PATCH_PX, self.PATCH_MARGIN_PX
        ix, iy = int(round(cx)), int(round(cy))
        if not self._patches or abs(ix) > m or abs(iy) > m:
            return None
        found = []
        for px, py, ref in self._patches:
            patch = grey[py + iy:py + iy + p, px + ix:px + ix + p].astype(np.float32)
            (fx, fy), response = _phase_correlate(ref, patch, self._patch_window)
            if response >= 0.2 and abs(fx) <= 6 and abs(fy) <= 6:
                found.append((fx, fy))
        if not found or len(found) < len(self._patches) // 2 + 1:
            return None
        fx, fy = np.median(np.array(found), axis=0)
        return ix + float(fx), iy + float(fy)


def _phase_correlate(reference: np.ndarray, image: np.ndarray, window: np.ndarray):
    """``cv2.phaseCorrelate`` on a copy of the reference: OpenCV multiplies inputs whose sides are
    already DFT-friendly by the window in place, so a kept reference would fade a little on every call
    (and the shift estimate with it)."""
    import cv2

    return cv2.phaseCorrelate(reference.copy(), image, window)


# -- foreground ---------------------------------------------------------------------


class ForegroundDetector:
    """Running-average background inside the region of interest, at full resolution; blobs by contours.

    Brightness is compared at full resolution. Colour is compared too, at half resolution (the
    camera's own chroma resolution): an object as bright as the wall behind it but of another
    colour (a blue bag on a red-brick wall) is invisible in grey.
    """

    GRADIENT_EVERY = 50  # frames between refreshes of the edge-aware threshold image
    ABSORB_EVERY = 26  # frames between background updates that include the foreground (even: see detect)
    MANY_BLOBS = 150  # blobs in one frame that mean rain (or snow)
    RAIN_KERNEL = np.ones((1, 3), np.uint8)
    REACQUIRE_FACTOR = 0.6  # share of the threshold at which a lost object is looked for where it should be
    MERGE_GAP_PX = 3  # blobs this close are pieces of one object (part of it crossed a wall of its colour)

    def __init__(self, *, region: np.ndarray, masks: tuple[np.ndarray, ...], width: int, height: int,
                 config: DetectorConfig, margin: int = 16):
        import cv2

        self.config = config
        self.margin = margin
        poly = np.asarray(region, dtype=np.float64)
        x0 = int(max(margin, np.floor(poly[:, 0].min())))
        y0 = int(max(margin, np.floor(poly[:, 1].min())))
        x1 = int(min(width - margin, np.ceil(poly[:, 0].max())))
        y1 = int(min(height - margin, np.ceil(poly[:, 1].max())))
        if x1 - x0 < 8 or y1 - y0 < 8:
            from vision.calibration import CalibrationError

            raise CalibrationError("the façade region lies outside the frame; check the calibration's image points")
        self.rect = (x0, y0, x1, y1)
        self.outer = (x0 - margin, y0 - margin, x1 + margin, y1 + margin)  # the grey region detect() takes
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round(poly - [x0, y0]).astype(np.int32)], 255)
        for m in masks:
            cv2.fillPoly(mask, [np.round(np.asarray(m) - [x0, y0]).astype(np.int32)], 0)
        self.mask = mask
        self.area = max(int(cv2.countNonZero(mask)), 1)
        self._bg_f = self._bg = self._thr = self._diff = None
        self._cbg_f = self._cbg = self._cthr = self._cdiff = None  # the same for colour, at half resolution
        self._cnoise = 2.0
        self.mask_half = np.ascontiguousarray(mask[::2, ::2])
        self._rainy = False
        self._bg_brightness = 0.0
        self._frames = 0
        self._noise = 3.0  # grey levels: a first guess until the first measurement
        self.relearned = 0
        self.relearn_reasons: dict[str, int] = {}

    def detect(self, grey: np.ndarray, shift: Shift, *, frame: int, t: float, brightness: float,
               colour: np.ndarray | None = None) -> list[Detection]:
        """Foreground blobs of this frame's grey ``outer`` region, in reference image coordinates.

        ``colour`` is the same region in BGR; without it (or with ``config.colour`` off) only
        brightness is compared.
        """
        import cv2

        self._diff = self._cdiff = None
        if abs(shift.dx) > self.margin - 1 or abs(shift.dy) > self.margin - 1 or not shift.reliable:
            self._bg_f = None  # shaken beyond the margin: start again from the next frame
            self._count_relearn("shake")
            return []
        grey = self._aligned(grey, shift)
        chroma = self._chroma(colour, shift) if colour is not None and self.config.colour else None
        if self._bg_f is None:
            self._learn(grey, brightness, chroma)
            return []
        if chroma is not None and self._cbg_f is None:
            self._learn_chroma(chroma)
            chroma = None
        self._frames += 1
        # a global light change (gain) is taken out before differencing
        gain = brightness / self._bg_brightness if self._bg_brightness > 1.0 else 1.0
        bg = self._bg if abs(gain - 1.0) < 0.004 else cv2.convertScaleAbs(self._bg, alpha=gain)
        diff = cv2.absdiff(grey, bg)
        fg = cv2.compare(diff, self._thr, cv2.CMP_GT)
        self._diff = diff
        if chroma is not None:
            # a gain scales the colour-difference channels about their mid-grey zero
            cbg = self._cbg if abs(gain - 1.0) < 0.004 else cv2.convertScaleAbs(self._cbg, alpha=gain,
                                                                               beta=128.0 * (1.0 - gain))
            self._cdiff = _chroma_distance(cv2.absdiff(chroma, cbg))
            cfg = cv2.compare(self._cdiff, self._cthr, cv2.CMP_GT)  # colour change at half resolution
            if cv2.countNonZero(cfg):
                x, y, w, h = cv2.boundingRect(cfg)
                up = cv2.resize(cfg[y:y + h, x:x + w], (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
                ys, xs = slice(2 * y, min(2 * (y + h), fg.shape[0])), slice(2 * x, min(2 * (x + w), fg.shape[1]))
                fg[ys, xs] |= up[: ys.stop - ys.start, : xs.stop - xs.start]
        count = cv2.countNonZero(fg)
        detections: list[Detection] = []
        if count > self.config.max_foreground_fraction * self.area:
            self._learn(grey, brightness, chroma)
            self._count_relearn("foreground share")
            return []
        if count:
            detections = self._blobs(fg, frame=frame, t=t)
            if detections is None:
                self._learn(grey, brightness, chroma)
                self._count_relearn("blob count")
                return []
        if self._frames % 2 == 0:  # learning every other frame at twice the rate halves the cost
            a = min(2 * self.config.background_alpha, 1.0)
            absorb = not count or self._frames % self.ABSORB_EVERY == 0
            if absorb:  # now and then the foreground is learned too, so that things that arrive and stay are
                cv2.accumulateWeighted(grey, self._bg_f, a)
            else:  # foreground pixels stay out of the background, so a moving object leaves no ghost behind
                cv2.accumulateWeighted(grey, self._bg_f, a, mask=cv2.bitwise_not(fg))
            self._bg = cv2.convertScaleAbs(self._bg_f)
            self._bg_brightness += a * (brightness - self._bg_brightness)
            if chroma is not None and self._frames % 4 == 0:  # colour: every fourth frame at four times the rate
                a = min(4 * self.config.background_alpha, 1.0)
                cv2.accumulateWeighted(chroma, self._cbg_f, a, mask=None if absorb else cv2.bitwise_not(cfg))
                self._cbg = cv2.convertScaleAbs(self._cbg_f)
        if self._frames % self.GRADIENT_EVERY == 0:
            self._noise = _noise_sigma(diff, self.mask)
            self._thr = self._threshold_image(self._bg)
            if chroma is not None:
                self._cnoise = _noise_sigma(self._cdiff, self.mask_half)
                self._cthr = self._chroma_threshold_image(self._cbg)
        return detections

    def reacquire(self, x: float, y: float, reach: float, *, frame: int, t: float, min_area: int) -> Detection | None:
        """The largest faint blob within ``reach`` of (x, y) in the last frame, at a lowered threshold.

        A known object that the usual threshold lost (it crosses a wall of nearly its own shade) is
        looked for only where its track predicts it, so the lower threshold adds no noise elsewhere.
        """
        import cv2

        if self._diff is None:
            return None
        x0, y0 = self.rect[0], self.rect[1]
        h, w = self._diff.shape
        r = int(reach)
        ax, ay = max(int(x - x0) - r, 0), max(int(y - y0) - r, 0)
        bx, by = min(int(x - x0) + r + 1, w), min(int(y - y0) + r + 1, h)
        if bx - ax < 3 or by - ay < 3:
            return None
        faint = self._diff[ay:by, ax:bx] > self._thr[ay:by, ax:bx] * self.REACQUIRE_FACTOR
        if self._cdiff is not None:
            hy, hx = slice(ay // 2, (by + 1) // 2), slice(ax // 2, (bx + 1) // 2)
            cfaint = self._cdiff[hy, hx] > self._cthr[hy, hx] * self.REACQUIRE_FACTOR
            faint |= np.repeat(np.repeat(cfaint, 2, axis=0), 2, axis=1)[ay % 2:ay % 2 + by - ay, ax % 2:ax % 2 + bx - ax]
        faint = faint.astype(np.uint8)
        if self._rainy:
            faint = cv2.morphologyEx(faint, cv2.MORPH_OPEN, self.RAIN_KERNEL)
        n, _, stats, centres = cv2.connectedComponentsWithStats(faint, connectivity=8)
        if n < 2:
            return None
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[k, cv2.CC_STAT_AREA])
        if area < min_area:
            return None
        return Detection(frame=frame, t=t, x=float(x0 + ax + centres[k, 0]), y=float(y0 + ay + centres[k, 1]),
                         area=area, w=int(stats[k, cv2.CC_STAT_WIDTH]), h=int(stats[k, cv2.CC_STAT_HEIGHT]),
                         faint=True)

    def _aligned(self, outer: np.ndarray, shift: Shift) -> np.ndarray:
        """The region moved back onto the reference view: a crop for whole pixels, else resampled."""
        import cv2

        x0, y0, x1, y1 = self.rect
        m = self.margin
        ix, iy = round(shift.dx), round(shift.dy)
        if abs(shift.dx - ix) < 0.3 and abs(shift.dy - iy) < 0.3:
            return outer[m + iy:m + iy + y1 - y0, m + ix:m + ix + x1 - x0]
        warp = np.float32([[1, 0, m + shift.dx], [0, 1, m + shift.dy]])
        return cv2.warpAffine(outer, warp, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)

    def _chroma(self, outer: np.ndarray, shift: Shift) -> np.ndarray:
        """The colour region at half resolution, moved back onto the reference view."""
        import cv2

        h, w = self.mask_half.shape
        m = self.margin
        # every other pixel: cameras store colour at half resolution, so little is lost
        small = cv2.cvtColor(cv2.resize(outer, ((outer.shape[1] + 1) // 2, (outer.shape[0] + 1) // 2),
                                        interpolation=cv2.INTER_NEAREST), cv2.COLOR_BGR2YCrCb)
        # to the nearest whole pixel, which is half a pixel at full resolution: colour changes slowly across
        # a wall, and its edges carry a raised threshold
        ix, iy = round(shift.dx / 2), round(shift.dy / 2)
        return small[m // 2 + iy:m // 2 + iy + h, m // 2 + ix:m // 2 + ix + w]

    def _blobs(self, fg: np.ndarray, *, frame: int, t: float) -> list[Detection] | None:
        # outer contours are far cheaper than connected-component labelling on a sparse mask
        import cv2

        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        self._rainy = len(contours) > self.MANY_BLOBS
        if self._rainy:
            # rain: hundreds of near-upright streaks one or two pixels wide; an opening across them removes
            # them before they cost anything, and leaves whatever is three pixels wide or more
            fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self.RAIN_KERNEL)
            contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if len(contours) > 4 * self.config.max_blobs_per_frame:
            return None
        if not contours:
            return []
        rects = np.array([cv2.boundingRect(c) for c in contours])
        w, h = rects[:, 2], rects[:, 3]
        # upright streaks (rain) and boxes too small to hold the smallest blob need no closer look
        upright_streak = (np.maximum(w, h) >= 10) & (np.minimum(w, h) <= 2)
        rows = []
        for x, y, w, h in rects[~upright_streak & (w * h >= self.config.min_area_px)]:
            m = cv2.moments(fg[y:y + h, x:x + w], True)
            if m["m00"] > 0:
                rows.append((x, y, w, h, m["m00"], x + m["m10"] / m["m00"], y + m["m01"] / m["m00"]))
        if not rows:
            return []
        b = np.array(rows)
        area, length = b[:, 4], np.hypot(b[:, 2], b[:, 3])
        streak = (length >= 10) & (area < 2.2 * length)  # rain: long streaks one or two pixels thick
        b = b[(area >= self.config.min_area_px) & (area <= self.config.max_area_px) & ~streak]
        if len(b) > self.config.max_blobs_per_frame:
            return None
        x0, y0 = self.rect[0], self.rect[1]
        out = []
        for group in _touching_groups(b, gap=self.MERGE_GAP_PX):
            g = b[group]
            a = g[:, 4]
            gx0, gy0 = g[:, 0].min(), g[:, 1].min()
            gx1, gy1 = (g[:, 0] + g[:, 2]).max(), (g[:, 1] + g[:, 3]).max()
            out.append(Detection(frame=frame, t=t, x=float(g[:, 5] @ a / a.sum() + x0),
                                 y=float(g[:, 6] @ a / a.sum() + y0), area=int(a.sum()),
                                 w=int(gx1 - gx0), h=int(gy1 - gy0)))
        return out

    def _count_relearn(self, reason: str) -> None:
        self.relearned += 1
        self.relearn_reasons[reason] = self.relearn_reasons.get(reason, 0) + 1

    def _learn(self, grey: np.ndarray, brightness: float, chroma: np.ndarray | None = None) -> None:
        self._bg_f = grey.astype(np.float32)
        self._bg = grey.copy()
        self._bg_brightness = brightness
        self._thr = self._threshold_image(grey)
        if chroma is not None:
            self._learn_chroma(chroma)

    def _learn_chroma(self, chroma: np.ndarray) -> None:
        self._cbg_f = chroma.astype(np.float32)
        self._cbg = chroma.copy()
        self._cthr = self._chroma_threshold_image(chroma)

    def _threshold_image(self, bg: np.ndarray) -> np.ndarray:
        """Per-pixel threshold: the base level, raised on strong edges, 255 outside the region."""
        import cv2

        gx = cv2.Sobel(bg, cv2.CV_16S, 1, 0, ksize=3)
        gy = cv2.Sobel(bg, cv2.CV_16S, 0, 1, ksize=3)
        grad = cv2.addWeighted(cv2.convertScaleAbs(gx), 0.125, cv2.convertScaleAbs(gy), 0.125, 0)
        return self._raised(grad, floor=self.config.diff_threshold, noise=self._noise, mask=self.mask)

    def _chroma_threshold_image(self, cbg: np.ndarray) -> np.ndarray:
        """The same for the colour difference (half resolution): raised on the edges of any channel."""
        import cv2

        gx = cv2.convertScaleAbs(cv2.Sobel(cbg, cv2.CV_16S, 1, 0, ksize=3))
        gy = cv2.convertScaleAbs(cv2.Sobel(cbg, cv2.CV_16S, 0, 1, ksize=3))
        grad = _chroma_distance(cv2.addWeighted(gx, 0.25, gy, 0.25, 0))
        return self._raised(grad, floor=self.config.colour_threshold, noise=self._cnoise, mask=self.mask_half)

    def _raised(self, grad: np.ndarray, *, floor: float, noise: float, mask: np.ndarray) -> np.ndarray:
        """A threshold image from an edge strength image: a base level raised near edges, 255 off ``mask``."""
        import cv2

        grad = cv2.dilate(grad, np.ones((3, 3), np.uint8))
        # the base level follows the camera's noise (sensor, compression), never below the configured floor
        base = max(floor, min(60.0, self.config.noise_factor * noise))
        thr = cv2.convertScaleAbs(grad, alpha=self.config.edge_gain, beta=base)
        thr[mask == 0] = 255
        return thr


def _chroma_distance(ycrcb: np.ndarray) -> np.ndarray:
    """Per pixel, mostly the colour-difference channels of a Y, Cr, Cb difference image: OpenCV's grey
    weights on (Y, Cr, Cb) give 0.11 Y + 0.59 Cr + 0.30 Cb. Brightness is the grey path's job, and rain
    and flicker change little else."""
    import cv2

    return cv2.cvtColor(ycrcb, cv2.COLOR_BGR2GRAY)


def _noise_sigma(diff: np.ndarray, mask: np.ndarray) -> float:
    """Robust standard deviation of background differences (median absolute deviation) on a sample."""
    sample = diff[::4, ::4][mask[::4, ::4] > 0]
    return 1.4826 * float(np.median(sample)) if sample.size else 3.0


STACK_MIN_PX = 5  # pieces at least this wide and tall may join a piece above or below them ...
STACK_GAP = 1.5  # ... across a gap of up to this many times the shorter one's height


def _touching_groups(boxes: np.ndarray, *, gap: float) -> list[list[int]]:
    """Indices of boxes (x, y, w, h, ...) grouped when they lie within ``gap`` pixels of each other."""
    n = len(boxes)
    if n < 2:
        return [[i] for i in range(n)]
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    # a big object breaks into big pieces further apart: the allowed gap grows with the piece
    own = np.maximum(gap, 0.4 * np.maximum(boxes[:, 2], boxes[:, 3]))
    g = np.maximum(own[:, None], own[None, :])
    near = ((x0[:, None] <= x1[None, :] + g) & (x0[None, :] <= x1[:, None] + g)
            & (y0[:, None] <= y1[None, :] + g) & (y0[None, :] <= y1[:, None] + g))
    # an object of nearly the wall's colour shows only where it covers the windows of one column:
    # pieces one above the other, a window's height or so apart, are that object
    tall = np.where(np.minimum(boxes[:, 2], boxes[:, 3]) >= STACK_MIN_PX, boxes[:, 3], 0)
    v = STACK_GAP * np.minimum(tall[:, None], tall[None, :])
    near |= ((x0[:, None] <= x1[None, :]) & (x0[None, :] <= x1[:, None])
             & (y0[:, None] <= y1[None, :] + v) & (y0[None, :] <= y1[:, None] + v))
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(*np.nonzero(np.triu(near, 1))):
        parent[root(int(a))] = root(int(b))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


# -- tracking ------------------------------------------------------------------------


class Tracker:
    """Greedy nearest-neighbour tracking with a motion prediction; several objects at once."""

    NEW_TRACK_RADIUS = 28.0  # px: how far a one-point track's object may move in a frame
    MAX_TRACKS = 400
    ESTABLISHED = 8  # detections after which a track is given a longer gap tolerance
    AREA_RATIO = 6.0  # a blob this many times smaller or larger than the track's object is something else
    MERGE_MIN_DETECTIONS = 3  # a track this long whose object meets another's in one blob is carried on
    MERGE_SMALLER = 0.2  # ... when the other's area is at least this share of its own (or the reverse)
    MERGE_AREA = 0.5  # ... and holds the larger object's area and this share of the smaller's
    MERGE_EXTENT = 1.5  # ... or is this many times the larger object's size across
    MERGE_CLOSING = 2.0  # ... and the two close on each other by at least this many pixels a frame

    def __init__(self, *, max_gap_frames: int):
        self.max_gap = max_gap_frames
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, detections: list[Detection], *, frame: int) -> list[Track]:
        """Assign this frame's detections to tracks; returns the tracks that ended."""
        tracks = self.tracks
        assigned_track: set[int] = set()
        used: set[int] = set()
        if tracks and detections:
            pred, radius = self._predictions(frame)
            pos = np.array([[d.x, d.y] for d in detections])
            dist = np.linalg.norm(pred[:, None, :] - pos[None, :, :], axis=2)
            ok = dist <= radius[:, None]
            # a blob far smaller or larger than the object so far is something else (rain, a bird)
            track_area = np.array([t.motion[8] for t in tracks], float)
            blob_area = np.array([d.area for d in detections], float)
            ratio = blob_area[None, :] / track_area[:, None]
            similar = (ratio >= 1 / self.AREA_RATIO) & (ratio <= self.AREA_RATIO)
            # ... except a smaller piece right where the object is predicted: part of a faint object
            # that shows only where it stands out from the wall behind it
            faint = np.array([d.faint for d in detections])
            piece = (blob_area[None, :] < track_area[:, None]) & (dist <= 0.5 * radius[:, None]) & ~faint[None, :]
            ok &= similar | piece | (track_area[:, None] < 12) & (blob_area[None, :] < 72)
            ti, di = np.nonzero(ok)
            order = np.argsort(dist[ti, di], kind="stable")
            matches: dict[int, list[int]] = {}
            for k in order:
                a, b = int(ti[k]), int(di[k])
                if a in assigned_track or b in used:
                    continue
                assigned_track.add(a)
                used.add(b)
                matches[a] = [b]
            shared = self._shared_blobs(tracks, detections, matches, pred, assigned_track)
            # an object known to be large may show as several pieces: pieces within its size join it
            for a, found in matches.items():
                if a in shared:
                    continue
                reach = self._extent(tracks[a])
                if reach > 6:
                    near = np.nonzero(dist[a] <= radius[a] + reach)[0]
                    for b in near:
                        if int(b) not in used and np.hypot(*(pos[b] - pos[found[0]])) <= reach:
                            used.add(int(b))
                            found.append(int(b))
                tracks[a].add(combined_detection([detections[b] for b in found]))
                tracks[a].misses = 0
            for a, stand_in in shared.items():
                tracks[a].add(stand_in)
                tracks[a].misses = 0
                assigned_track.add(a)
        ended: list[Track] = []
        alive: list[Track] = []
        for i, track in enumerate(tracks):
            if i not in assigned_track:
                track.misses += 1
            # an established track may wait longer for its object (it crossed a wall of its own colour)
            limit = self.max_gap if len(track) < self.ESTABLISHED else 2 * self.max_gap + 2
            (ended if track.misses > limit else alive).append(track)
        for j, d in enumerate(detections):
            if j not in used and not d.faint and len(alive) < self.MAX_TRACKS:
                alive.append(Track(id=self._next_id, detections=[d]))
                self._next_id += 1
        self.tracks = alive
        return ended

    def _shared_blobs(self, tracks: list[Track], detections: list[Detection], matches: dict[int, list[int]],
                      pred: np.ndarray, assigned: set[int]) -> dict[int, Detection]:
        """Stand-in detections for tracks whose objects merged into one blob (two objects passing).

        A blob matched to one track that also holds the predicted position of another track that was seen
        in the last frame and found nothing now, and is clearly larger than either object, is both objects:
        its centre is neither's, and taking it would throw the one track off course and leave the other
        to end. Each track is given a faint detection at its own prediction, inside the blob, instead.
        """
        shared: dict[int, Detection] = {}
        waiting = [c for c, t in enumerate(tracks) if c not in assigned and t.misses == 0]
        if not waiting:
            return shared
        for a, found in matches.items():
            d = detections[found[0]]
            if tracks[a].misses or len(tracks[a]) < self.MERGE_MIN_DETECTIONS or not _upright(tracks[a]):
                continue
            x0, x1, y0, y1 = d.x - d.w / 2, d.x + d.w / 2, d.y - d.h / 2, d.y + d.h / 2
            # ... and whose object closes on this one: pieces of one object (a large one of the wall's
            # colour shows as one per window it covers) move together, and merging them is right
            # (a young track's speed, or a rising one's, says too little to tell)
            inside = [c for c in waiting if c not in shared and len(tracks[c]) >= self.MERGE_MIN_DETECTIONS
                      and _upright(tracks[c])
                      and x0 <= pred[c][0] <= x1 and y0 <= pred[c][1] <= y1
                      and min(tracks[c].motion[3], tracks[a].motion[3]) >= -1.0
                      and abs(tracks[c].motion[3] - tracks[a].motion[3]) >= self.MERGE_CLOSING]
            if not inside:
                continue
            group = [a] + inside
            areas = sorted(tracks[c].motion[8] for c in group)
            size = max(tracks[c].motion[6] for c in group)
            # objects of comparable size, and a blob larger than either: by the better part of the smaller
            # one's area, or in its extent (a tumbling object's area varies, and overlapping ones hide part)
            if (areas[0] < self.MERGE_SMALLER * areas[-1]
                    or d.area < areas[-1] + self.MERGE_AREA * areas[0] and max(d.w, d.h) < self.MERGE_EXTENT * size):
                continue
            for c in group:
                t = tracks[c]
                shared[c] = Detection(frame=d.frame, t=d.t, x=float(np.clip(pred[c][0], x0, x1)),
                                      y=float(np.clip(pred[c][1], y0, y1)),
                                      area=int(t.motion[8]), w=t.last.w, h=t.last.h, faint=True)
        return shared

    @staticmethod
    def _extent(track: Track) -> float:
        """How far from its centre a piece of the track's object may lie, in pixels."""
        sizes = sorted(max(d.w, d.h) for d in track.detections[-5:])
        return 0.6 * sizes[len(sizes) // 2] + 2.0

    def predictions(self, frame: int, tracks: list[Track]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted positions of ``tracks``' objects at ``frame`` and the match radius around each."""
        return self._predictions(frame, tracks)

    def drop(self, track: Track) -> None:
        """Stop following ``track`` (its owner ended it); its blobs may start a new track."""
        self.tracks = [t for t in self.tracks if t is not track]

    def finish(self) -> list[Track]:
        """End every track (the source is exhausted)."""
        ended, self.tracks = self.tracks, []
        return ended

    def _predictions(self, frame: int, tracks: list[Track] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Where each track's object should be at ``frame``, and how far from there a match may lie."""
        m = np.array([t.motion for t in (self.tracks if tracks is None else tracks)], dtype=float)
        x, y, vx, vy, ax, ay, size, last, _, new = m.T
        ahead = frame - last
        pred = np.column_stack([x + vx * ahead + 0.5 * ax * ahead ** 2, y + vy * ahead + 0.5 * ay * ahead ** 2])
        radius = 5.0 + 0.6 * size + 0.3 * np.hypot(vx, vy) * ahead + 2.0 * (ahead - 1)
        radius = np.where(new > 0, self.NEW_TRACK_RADIUS + size, radius)
        return pred, radius


def _upright(track: Track) -> bool:
    """Does a track move (if at all) mainly up or down, as objects falling from one window column do?
    A bird or a leaf drifting across the wall does not: its course through a shared blob is no fall's."""
    vx, vy = track.motion[2], track.motion[3]
    return abs(vx) <= max(1.0, 0.5 * abs(vy))


def combined_detection(pieces: list[Detection]) -> Detection:
    """One detection from the pieces of one object (area-weighted centre, joint box)."""
    if len(pieces) == 1:
        return pieces[0]
    area = np.array([p.area for p in pieces], float)
    x0 = min(p.x - p.w / 2 for p in pieces)
    x1 = max(p.x + p.w / 2 for p in pieces)
    y0 = min(p.y - p.h / 2 for p in pieces)
    y1 = max(p.y + p.h / 2 for p in pieces)
    first = pieces[0]
    return Detection(frame=first.frame, t=first.t, x=float(np.dot(area, [p.x for p in pieces]) / area.sum()),
                     y=float(np.dot(area, [p.y for p in pieces]) / area.sum()), area=int(area.sum()),
                     w=int(round(x1 - x0)), h=int(round(y1 - y0)))


def _motion(d: list[Detection]) -> tuple:
    """A track's state for prediction: last position, velocity and acceleration per frame, size, area."""
    last = d[-1]
    size = max(last.w, last.h)
    recent = sorted(p.area for p in d[-5:])
    area = recent[len(recent) // 2]
    if len(d) == 1:
        return (last.x, last.y, 0.0, 0.0, 0.0, 0.0, size, last.frame, area, 1.0)
    # velocity and acceleration over points a few frames apart: tumbling shapes make centroids jumpy
    a = d[-3] if len(d) >= 5 else d[-2]
    steps = max(last.frame - a.frame, 1)
    vx, vy = (last.x - a.x) / steps, (last.y - a.y) / steps
    ax = ay = 0.0
    if len(d) >= 5:
        b = d[-5]
        s2 = max(a.frame - b.frame, 1)
        wx, wy = (a.x - b.x) / s2, (a.y - b.y) / s2
        span = (last.frame + a.frame) / 2 - (a.frame + b.frame) / 2
        ax, ay = (vx - wx) / max(span, 1), (vy - wy) / max(span, 1)
    # the velocity is that of the middle of the window; bring it to the last point
    vx, vy = vx + ax * steps / 2, vy + ay * steps / 2
    # only a downward acceleration is expected (gravity); a sideways one is centroid noise that
    # would throw a prediction across a gap far off course
    return (last.x, last.y, vx, vy, 0.0, max(ay, 0.0), size, last.frame, area, 0.0)
