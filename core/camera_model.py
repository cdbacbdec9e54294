"""A pinhole camera in local metres, used to make calibrations that agree with geometry (and to render clips).

The demo's cameras are not real, so their calibrations are computed: a camera at
a position, height, heading and tilt projects façade and ground points to pixels,
and pixels back onto those planes. The correspondences it yields are exactly what
a surveyor would measure, so the vision pipeline's homographies come out right. It sits in the
bottom package because both the demo's generator (``data``) and the clip renderers (``vision``) use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeCamera:
    x: float  # metres east (projected CRS)
    y: float  # metres north
    height: float  # metres above ground
    heading_deg: float  # clockwise from north
    tilt_deg: float  # upward positive
    hfov_deg: float
    width: int = 1920
    height_px: int = 1080

    @property
    def focal_px(self) -> float:
        return (self.width / 2) / math.tan(math.radians(self.hfov_deg) / 2)

    @property
    def vfov_deg(self) -> float:
        return math.degrees(2 * math.atan((self.height_px / 2) / self.focal_px))

    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        th, ph = math.radians(self.heading_deg), math.radians(self.tilt_deg)
        forward = np.array([math.sin(th) * math.cos(ph), math.cos(th) * math.cos(ph), math.sin(ph)])
        right = np.array([math.cos(th), -math.sin(th), 0.0])
        up = np.cross(right, forward)
        return forward, right, up

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.x, self.y, self.height])

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (N×3, metres) → pixels (N×2); NaN for points behind the camera."""
        forward, right, up = self._axes()
        rel = np.atleast_2d(points) - self.centre
        depth = rel @ forward
        with np.errstate(divide="ignore", invalid="ignore"):
            px = self.width / 2 + self.focal_px * (rel @ right) / depth
            py = self.height_px / 2 - self.focal_px * (rel @ up) / depth
        out = np.column_stack([px, py])
        out[depth <= 0] = np.nan
        return out

    def ray(self, pixels: np.ndarray) -> np.ndarray:
        """Unit-free direction (N×3) of the ray through each pixel."""
        forward, right, up = self._axes()
        pixels = np.atleast_2d(pixels)
        dx = (pixels[:, 0] - self.width / 2) / self.focal_px
        dy = -(pixels[:, 1] - self.height_px / 2) / self.focal_px
        return forward + np.outer(dx, right) + np.outer(dy, up)

    def back_project(self, pixels: np.ndarray, plane_point: np.ndarray, plane_normal: np.ndarray) -> np.ndarray:
        """Where the rays through ``pixels`` meet a plane (N×3); NaN where they never do."""
        rays = self.ray(pixels)
        denom = rays @ plane_normal
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((plane_point - self.centre) @ plane_normal) / denom
        hits = self.centre + rays * t[:, None]
        hits[(t <= 0) | ~np.isfinite(t)] = np.nan
        return hits
