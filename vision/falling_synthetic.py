"""A rendered drop for the live-camera tests and the demo's camera: a façade drawn through a camera's own
calibration (plaster, rows of windows), one object dropped from a window, falling freely.

:func:`render_drop` writes an MJPG clip; ``onemap demo --cameras`` streams one in a loop over RTSP for a
demo façade camera, and ``tests/test_vision_run.py`` and ``tests/test_vision_pipeline.py`` feed the
detector with it. (The benchmark's harder clips, with a photographed façade, birds and rain, are
``data/falling_clips.py``.)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vision.calibration import Calibration

WIDTH, HEIGHT, FPS = 640, 360, 25.0
RELEASE_FRAME = 30


def render_drop(calibration: dict, path: Path, *, floor: int, u: float, seconds: float = 4.0,
                radius_px: float = 3.0, seed: int = 0, release_frame: int = RELEASE_FRAME) -> tuple[float, float]:
    """Write an MJPG clip of one object dropped from ``floor`` at ``u`` metres; returns its release (u, v)."""
    cal = Calibration.from_dict(calibration).scaled_to(WIDTH, HEIGHT)
    f = cal.facade
    background = np.full((HEIGHT, WIDTH, 3), (205, 195, 185), np.uint8)
    cv2.fillPoly(background, [np.round(cal.facade_polygon()).astype(np.int32)], (150, 155, 165))
    u_lo, u_hi, _, v_hi = cal.facade_extent_m()
    for k in range(int(v_hi // f.floor_height_m)):
        for left in np.arange(u_lo + 1.0, u_hi - 1.8, 3.6):
            bottom = k * f.floor_height_m + 0.9
            quad = [cal.facade_to_image(a, b) for a, b in
                    ((left, bottom), (left + 1.6, bottom), (left + 1.6, bottom + 1.5), (left, bottom + 1.5))]
            cv2.fillConvexPoly(background, np.round(np.array(quad)).astype(np.int32), (70, 80, 95))
    v0 = (floor - f.ground_floor) * f.floor_height_m + 1.2
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    for k in range(int(seconds * FPS)):
        frame = background.copy()
        t = (k - release_frame) / FPS
        v = v0 - 0.5 * 9.81 * t * t if t >= 0 else v0
        if v > 0:
            x, y = cal.facade_to_image(u, v)
            cv2.circle(frame, (int(round(x * 16)), int(round(y * 16))), int(radius_px * 16), (25, 25, 25), -1,
                       cv2.LINE_AA, 4)
        noise = rng.normal(0, 1.5, frame.shape)
        writer.write(np.clip(frame + noise, 0, 255).astype(np.uint8))
    writer.release()
    return u, v0
