"""The demo community's parking cameras with their spots and zones, as plain data for rendering parking clips.

``vision.parking_synthetic.scene_for`` turns one of these into a scene (the two packages sit on
one floor and do not import each other; the benchmark and the tests join them).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pyproj import Transformer

from data.demo import DEFAULT_SEED, METRIC_CRS, generate_demo

NEAR_M = 80.0  # spots and zones this near a camera are rendered with it


def demo_parking_cameras(seed: int | None = None) -> list[dict]:
    """Each parking camera of the demo: code, lonlat, height_m, heading_deg, fov_deg, calibration, and the spots
    ``[(code, ring)]`` and zones ``[(code, ring, reason, name)]`` within ``NEAR_M`` (rings in lon/lat)."""
    return _cameras(DEFAULT_SEED if seed is None else seed)


@lru_cache(maxsize=2)
def _cameras(seed: int) -> list[dict]:
    data = generate_demo(seed=seed)
    to_metric = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    centre = lambda row: np.array(to_metric.transform(*row["geom"].centroid.coords[0]))  # noqa: E731
    spots = [(r, centre(r)) for r in data.tables["parking_spots"]]
    zones = [(r, centre(r)) for r in data.tables["no_parking_zones"]]
    out = []
    for cam in (r for r in data.tables["cameras"] if r["purpose"] == "parking"):
        here = np.array(to_metric.transform(cam["geom"].x, cam["geom"].y))
        near = lambda rows: [r for r, c in rows if np.hypot(*(c - here)) < NEAR_M]  # noqa: E731
        out.append({
            "code": cam["code"], "lonlat": (cam["geom"].x, cam["geom"].y), "height_m": cam["height_m"],
            "heading_deg": cam["heading_deg"], "fov_deg": cam["fov_deg"], "calibration": cam["calibration"],
            "spots": [(r["code"], tuple(r["geom"].exterior.coords)) for r in near(spots)],
            "zones": [(r["code"], tuple(r["geom"].exterior.coords), r["reason"], r["name"]) for r in near(zones)],
        })
    return out
