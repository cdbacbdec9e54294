"""Synthetic façade clips with thrown and dropped objects, and their ground truth: the falling-object benchmark set.

``clip_render(seed=…, out_dir=…)`` writes one AVI (MJPG) and returns its :class:`ClipTruth`: the
camera calibration (the JSON of DESIGN.md, with a ``facade`` block), and for every drop the frames
it is visible, its release floor and window column, its size in pixels and its path in the image.
``benchmark_set(out_dir=…)`` makes the mixed set of ≥200 clips that ``tests/bench/vision_falling.py``
scores (140 with one or two drops, 6 s each; 60 pure negatives, a minute each: one camera-hour),
cached under ``out_dir/v{GENERATOR_VERSION}-seed{seed}/`` with each clip's recipe, so reruns reuse them.

The façade point of a drop is projected through the homography of the façade plane; how far the
object is out from the wall (a few metres at most) is ignored, as the calibration only knows the plane.

Everything is deterministic from the seed. Backgrounds are the real façade photo ``building.jpg``
(read from ``$ONEMAP_SAMPLES`` or ``../shared/data``, never copied) or a procedural façade seen by a
pinhole camera. Drops move by gravity and quadratic drag in façade metres and are projected through
the clip's homography, so perspective is real. Negatives are birds (flapping, gliding, landing),
insects near the lens, fluttering leaves, rain, light changes and camera shake.

The benchmark clips (seeds 4242 and up) are never used for training: the classifier of ``vision/``
is trained on vision-core's own trajectory simulator (``vision/simulation.py``) with a different seed space.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from core.camera_model import PinholeCamera

GENERATOR_VERSION = 1
BENCH_SEED = 4242
GRAVITY = 9.81  # m/s²
SIZE_RANGE_PX = (3.0, 40.0)
DISTRACTOR_KINDS = ("bird", "insect", "leaf")
BACKGROUNDS = ("generated", "photo")
OBJECT_COLOURINGS = ("any", "wall")  # the palette of everyday objects, or nearly the wall's own colour
DEMO_CENTRE = (113.66, 34.757)  # lon, lat of the demo community
SUBSTEPS = 8  # physics sub-steps per frame; also the samples of the motion blur
ROOT = Path(__file__).resolve().parent.parent
PHOTO_NAME = "building.jpg"


class ClipRenderError(ValueError):
    """A clip cannot be rendered with the arguments given."""


@dataclass(frozen=True)
class DropTruth:
    """One thrown or dropped object: when it is visible, where it came from, how big it is."""

    frame_start: int  # the frame of release
    frame_end: int  # the last frame its centre is in the image and above the ground
    origin_floor: int
    origin_column: int | None  # 1-based window column: 1 + floor(u / column_width_m) of the release point
    size_px: float  # largest extent in the image at release
    release_image: tuple[float, float] = (0.0, 0.0)  # the release point in the (unshaken) image
    release_facade: tuple[float, float] = (0.0, 0.0)  # the release point on the façade, (u, v) metres
    path: tuple[tuple[float, float], ...] = ()  # image (x, y) per frame, frame_start..frame_end (blur centre)


@dataclass(frozen=True)
class ClipTruth:
    """One rendered clip and everything that is true about it."""

    path: Path
    calibration: dict
    fps: float
    frames: int
    width: int
    height: int
    drops: tuple[DropTruth, ...]
    negatives: tuple[str, ...]  # distractor kinds and conditions: bird, insect, leaf, rain, light, shake
    seed: int = 0
    background: str = "generated"
    window_columns_m: tuple[float, ...] = ()  # u (metres) of each window column's centre, left to right

    @property
    def seconds(self) -> float:
        return self.frames / self.fps

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ClipTruth":
        drops = tuple(
            DropTruth(
                **{
                    **d,
                    "release_image": tuple(d["release_image"]),
                    "release_facade": tuple(d["release_facade"]),
                    "path": tuple(tuple(p) for p in d["path"]),
                }
            )
            for d in data["drops"]
        )
        return cls(
            **{
                **data,
                "path": Path(data["path"]),
                "drops": drops,
                "negatives": tuple(data["negatives"]),
                "window_columns_m": tuple(data["window_columns_m"]),
            }
        )


# ---------------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------------


def clip_render(
    *,
    seed: int,
    out_dir: Path,
    background: str = "generated",
    width: int = 1280,
    height: int = 720,
    fps: float = 25.0,
    seconds: float = 6.0,
    drops: int = 1,
    negatives: tuple[str, ...] = (),
    size_px: float | tuple[float, float] | None = None,
    jitter_px: float = 0.0,
    rain: bool = False,
    light_change: bool = False,
    name: str | None = None,
    colour: str = "any",
    column_gap_s: tuple[float, float] | None = None,
) -> ClipTruth:
    """Render one clip to ``out_dir`` and return its ground truth (deterministic from ``seed``).

    ``colour="wall"`` paints every object in nearly the wall's colour (it shows mainly against windows);
    ``column_gap_s=(lo, hi)`` lets every drop after the first go from the first one's window column, at
    most two floors from its floor, lo–hi seconds after the one before. Their defaults draw exactly what they drew before they existed.
    """
    _check_arguments(background=background, width=width, height=height, fps=fps, seconds=seconds,
                     drops=drops, negatives=negatives, size_px=size_px, jitter_px=jitter_px, colour=colour,
                     column_gap_s=column_gap_s)
    rng = np.random.default_rng([seed, GENERATOR_VERSION])
    frames = int(round(seconds * fps))
    facade = _photo_facade(width, height) if background == "photo" else _generated_facade(width, height, rng)
    calibration = _calibration(facade, rng)
    exposure = float(rng.uniform(0.3, 1.0))  # fraction of the frame interval the shutter is open
    size_lo, size_hi = _size_range(size_px)
    movers: list[_Mover] = []
    truths: list[DropTruth] = []
    if column_gap_s is None:
        starts = _drop_starts(rng, drops=drops, fps=fps, frames=frames)
    else:
        starts = _drop_starts_apart(rng, drops=drops, fps=fps, frames=frames, gap_s=column_gap_s)
    wall = _wall_colour(facade) if colour == "wall" else None
    column = floor = None
    for start in starts:
        mover, truth = _drop(rng, facade, start=start, frames=frames, fps=fps, exposure=exposure,
                             size=_log_uniform(rng, size_lo, size_hi), column=column, near_floor=floor, wall=wall)
        if column_gap_s is not None and column is None:  # the window (of the list) the first one came from
            column = int(np.argmin(np.abs(np.array(facade.window_columns_m) - truth.release_facade[0])))
            floor = truth.origin_floor
        movers.append(mover)
        truths.append(truth)
    for kind in negatives:
        movers.append(_DISTRACTORS[kind](rng, facade, frames=frames, fps=fps, exposure=exposure))
    conditions = _Conditions.make(rng, frames=frames, fps=fps, jitter_px=jitter_px, rain=rain,
                                  light_change=light_change)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name or f'clip-{seed}'}.avi"
    _write_video(path, facade.image, movers, conditions, fps=fps, frames=frames, seed=seed)
    kinds = tuple(negatives) + tuple(k for k, on in (("rain", rain), ("light", light_change),
                                                     ("shake", jitter_px > 0)) if on)
    return ClipTruth(
        path=path, calibration=calibration, fps=fps, frames=frames, width=width, height=height,
        drops=tuple(sorted(truths, key=lambda d: d.frame_start)), negatives=kinds, seed=seed,
        background=background, window_columns_m=tuple(round(u, 3) for u in facade.window_columns_m),
    )


def benchmark_set(*, out_dir: Path, count: int = 200, seed: int = BENCH_SEED, progress: bool = False) -> list[ClipTruth]:
    """The mixed benchmark clips at 1280×720 and 25 fps, rendered once and cached by seed and version."""
    if count < 1:
        raise ClipRenderError(f"count must be at least 1, not {count}")
    return [benchmark_clip(index=i, out_dir=out_dir, seed=seed, progress=progress) for i in range(count)]


def benchmark_clip(*, index: int, out_dir: Path, seed: int = BENCH_SEED, progress: bool = False) -> ClipTruth:
    """Benchmark clip ``index``, from the cache when it was rendered from the same recipe, else rendered now."""
    folder = Path(out_dir) / f"v{GENERATOR_VERSION}-seed{seed}"
    return recipe_clip(benchmark_recipe(index=index, seed=seed), folder=folder, progress=progress)


def recipe_clip(recipe: dict, *, folder: Path, progress: bool = False) -> ClipTruth:
    """The clip of a ``clip_render`` recipe in ``folder``, from the cache when it was rendered from it, else now."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / f"{recipe['name']}.json"
    clip = _cached(manifest, recipe)
    if clip is None:
        if progress:
            print(f"  rendering clip {recipe['name']} ({recipe['seconds']:g} s) ...", flush=True)
        clip = clip_render(out_dir=folder, **recipe)
        tmp = manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps({**clip.to_dict(), "recipe": _plain(recipe)}))
        tmp.replace(manifest)  # the manifest appears only once the video is complete
    return clip


def benchmark_recipe(*, index: int, seed: int = BENCH_SEED) -> dict:
    """The ``clip_render`` arguments of benchmark clip ``index``: a fixed, balanced mix."""
    rng = np.random.default_rng([seed, index, 7])
    bands = [(3.0, 4.0), (4.0, 6.0), (6.0, 10.0), (10.0, 20.0), (20.0, 40.0)]
    positive = index % 10 < 7  # 70% with drops, 30% pure negatives
    background = BACKGROUNDS[(index // 2) % 2]
    nuisance = rng.random()
    if positive:
        n = index - (index // 10) * 3  # running index among positives
        negatives = tuple(rng.choice(DISTRACTOR_KINDS, size=int(rng.integers(1, 3)))) if nuisance < 0.4 else ()
        drops = 2 if n % 3 == 2 else 1
        size = bands[n % len(bands)]
        seconds = 6.0
    else:
        # A minute each: 60 of them make the camera-hour that false alarms per hour are counted over.
        negatives = tuple(rng.choice(DISTRACTOR_KINDS, size=int(rng.integers(2, 7))))
        drops, size, seconds = 0, None, 60.0
    return {
        "seed": seed + index,
        "name": f"{index:04d}",
        "background": background,
        "width": 1280, "height": 720, "fps": 25.0, "seconds": seconds,
        "drops": drops, "size_px": size, "negatives": tuple(str(k) for k in negatives),
        "jitter_px": float(np.round(rng.uniform(0.3, 3.0), 2)) if rng.random() < 0.4 else 0.0,
        "rain": bool(rng.random() < (0.2 if positive else 0.35)),
        "light_change": bool(rng.random() < (0.25 if positive else 0.4)),
    }


FOCUSED_KINDS = ("fragment", "column")
FOCUSED_SEEDS = {"fragment": 21000, "column": 22000}  # far from the benchmark's 4242… and the other sets'


def focused_recipe(*, kind: str, index: int, seed: int | None = None) -> dict:
    """The ``clip_render`` arguments of clip ``index`` of a focused development set.

    ``fragment``: one large object (12–38 px), two in three of nearly the wall's colour, so its blob
    breaks up where it crosses the wall; ``column``: two objects let go from one window column
    0.2–1.0 s apart, in the ≥ 6 px bands. Conditions (distractors, rain, light, shake) are milder than
    the benchmark's, so that the set measures what it is for.
    """
    if kind not in FOCUSED_KINDS:
        raise ClipRenderError(f"kind must be one of {', '.join(FOCUSED_KINDS)}, not {kind!r}")
    seed = FOCUSED_SEEDS[kind] if seed is None else seed
    rng = np.random.default_rng([seed, index, 11])
    recipe = {
        "seed": seed + index, "name": f"{kind}-{index:04d}", "background": BACKGROUNDS[index % 2],
        "width": 1280, "height": 720, "fps": 25.0, "seconds": 6.0,
        "negatives": tuple(str(k) for k in rng.choice(DISTRACTOR_KINDS, size=1)) if rng.random() < 0.25 else (),
        "jitter_px": float(np.round(rng.uniform(0.3, 2.0), 2)) if rng.random() < 0.25 else 0.0,
        "rain": bool(rng.random() < 0.15), "light_change": bool(rng.random() < 0.15),
    }
    if kind == "fragment":
        return {**recipe, "drops": 1, "size_px": (12.0, 38.0), "colour": "any" if index % 3 == 2 else "wall"}
    bands = [(6.0, 10.0), (10.0, 20.0), (20.0, 40.0)]
    return {**recipe, "drops": 2, "size_px": bands[index % 3], "column_gap_s": (0.2, 1.0)}


def samples_dir() -> Path:
    """Where the real media are: ``$ONEMAP_SAMPLES``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("ONEMAP_SAMPLES")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def default_cache_dir() -> Path:
    """``.var/bench/falling_clips`` under ``$ONEMAP_VAR_DIR`` (default ``./.var``)."""
    var = Path(os.environ.get("ONEMAP_VAR_DIR", ROOT / ".var"))
    return var / "bench" / "falling_clips"


# ---------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------


def _check_arguments(*, background, width, height, fps, seconds, drops, negatives, size_px, jitter_px,
                     colour="any", column_gap_s=None) -> None:
    if background not in BACKGROUNDS:
        raise ClipRenderError(f"background must be one of {', '.join(BACKGROUNDS)}, not {background!r}")
    if width < 160 or height < 120 or width % 2 or height % 2:
        raise ClipRenderError(f"the clip must be at least 160×120 with even sides, not {width}×{height}")
    if not 1.0 <= fps <= 120.0:
        raise ClipRenderError(f"fps must be between 1 and 120, not {fps}")
    if not 1.0 <= seconds <= 600.0:
        raise ClipRenderError(f"seconds must be between 1 and 600, not {seconds}")
    if not 0 <= drops <= 4:
        raise ClipRenderError(f"drops must be between 0 and 4, not {drops}")
    if drops and seconds < 3.0:
        raise ClipRenderError(f"a clip with drops must last at least 3 s, not {seconds}")
    unknown = sorted(set(negatives) - set(DISTRACTOR_KINDS))
    if unknown:
        raise ClipRenderError(
            f"unknown negative kind(s) {', '.join(map(repr, unknown))}: use {', '.join(DISTRACTOR_KINDS)} "
            "(rain and light changes are the rain= and light_change= flags)"
        )
    if size_px is not None:
        lo, hi = _size_range(size_px)
        if not SIZE_RANGE_PX[0] <= lo <= hi <= SIZE_RANGE_PX[1]:
            raise ClipRenderError(f"size_px must lie within {SIZE_RANGE_PX[0]:g}–{SIZE_RANGE_PX[1]:g} px, not {size_px}")
    if not 0.0 <= jitter_px <= 10.0:
        raise ClipRenderError(f"jitter_px must be between 0 and 10, not {jitter_px}")
    if colour not in OBJECT_COLOURINGS:
        raise ClipRenderError(f"colour must be one of {', '.join(OBJECT_COLOURINGS)}, not {colour!r}")
    if column_gap_s is not None:
        lo, hi = column_gap_s
        if not 0.04 <= lo <= hi <= seconds - 2.5:
            raise ClipRenderError(f"column_gap_s must be 0.04 ≤ lo ≤ hi ≤ {seconds - 2.5:g} s, not {column_gap_s}")


def _size_range(size_px) -> tuple[float, float]:
    if size_px is None:
        return SIZE_RANGE_PX
    if isinstance(size_px, (int, float)):
        return float(size_px), float(size_px)
    lo, hi = size_px
    return float(lo), float(hi)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) if hi > lo else lo


def _plain(recipe: dict) -> dict:
    return json.loads(json.dumps(recipe))  # tuples become lists, as they come back from the manifest


def _cached(manifest: Path, recipe: dict) -> ClipTruth | None:
    """The clip rendered earlier from this very recipe, if its manifest and video are there."""
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    if data.pop("recipe", None) != _plain(recipe):
        return None
    clip = ClipTruth.from_dict(data)
    clip = replace(clip, path=manifest.with_suffix(".avi"))  # the folder may have moved
    return clip if clip.path.exists() and clip.path.stat().st_size > 0 else None


# ---------------------------------------------------------------------------------------------
# façades: the background image and the homography façade metres → image pixels
# ---------------------------------------------------------------------------------------------


@dataclass
class _Facade:
    image: np.ndarray  # BGR uint8, the clip size
    to_image: np.ndarray  # 3×3 homography, façade (u, v) metres → image (x, y)
    length_m: float
    height_m: float
    floor_height_m: float
    ground_floor: int
    release_floors: tuple[int, int]  # floors with windows that objects can come from (inclusive)
    window_columns_m: list[float]
    column_width_m: float  # window column k (1-based) spans u in [(k-1)·w, k·w)
    building: str

    def project(self, uv: np.ndarray) -> np.ndarray:
        """Façade points (N×2, metres) → image points (N×2)."""
        pts = cv2.perspectiveTransform(np.asarray(uv, np.float64).reshape(-1, 1, 2), self.to_image)
        return pts.reshape(-1, 2)

    def scale_at(self, uv: np.ndarray) -> np.ndarray:
        """Image pixels per façade metre at each point (geometric mean of the two directions)."""
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        du = self.project(uv + [0.05, 0.0]) - self.project(uv - [0.05, 0.0])
        dv = self.project(uv + [0.0, 0.05]) - self.project(uv - [0.0, 0.05])
        return np.sqrt(np.abs(du[:, 0] * dv[:, 1] - du[:, 1] * dv[:, 0])) / 0.1

    def floor_of(self, v_m: float) -> int:
        return self.ground_floor + int(math.floor(v_m / self.floor_height_m))

    def column_of(self, u_m: float) -> int:
        return 1 + int(math.floor(max(u_m, 0.0) / self.column_width_m))


# The photo's façade (building.jpg, 868×600). Measured by hand: the photo zoomed 3× with a pixel
# ruler, plus column-wise brightness profiles to find the dark shadow line under each floor slab.
# The base is a double-height ground storey (floors 1–2, with the canopy and shop fronts); above it
# five panel floors (3–7) of 3.0 m; the roof parapet is at 21 m. Window columns repeat every 3.6 m
# (assumed; only ratios are measurable), the end bay with balconies is 4.5 m wide.
# Each row: image x, image y of a slab shadow line, its height v above ground in metres.
PHOTO_SLAB_LINES = (
    (240, 98, 21), (240, 160, 18), (240, 222, 15), (240, 287, 12), (240, 352, 9),
    (300, 58, 21), (300, 120, 18), (300, 191, 15), (300, 262, 12), (300, 335, 9), (300, 406, 6),
    (340, 30, 21), (340, 101, 18), (340, 173, 15), (340, 247, 12), (340, 322, 9), (340, 399, 6),
    (380, 72, 18), (380, 150, 15), (380, 228, 12), (380, 309, 9), (380, 391, 6),
    (420, 42, 18), (420, 125, 15), (420, 209, 12), (420, 296, 9), (420, 380, 6),
    (520, 77, 15), (520, 170, 12), (520, 266, 9), (520, 358, 6),
    (600, 34, 15), (600, 136, 12), (600, 242, 9),
    (700, 94, 12), (700, 211, 9), (800, 49, 12), (800, 178, 9), (800, 309, 6),
    (860, 30, 12), (860, 164, 9), (860, 297, 6),
)
# Each row: image x, image y of a point on a vertical line (the building's left edge, a panel joint or
# a window slot), and its distance u along the façade in metres.
PHOTO_COLUMN_LINES = (
    (152, 160, 0.0), (152, 400, 0.0), (193, 140, 4.5), (192, 360, 4.5),
    (192, 317, 4.5), (222, 309, 8.1), (262, 299, 11.7), (300, 298, 15.3), (348, 281, 18.9),
    (403, 261, 22.5), (470, 237, 26.1), (550, 208, 29.7), (645, 174, 33.3), (765, 131, 36.9),
    (641, 60, 33.3), (648, 165, 33.3), (653, 280, 33.3), (759, 30, 36.9), (765, 120, 36.9), (775, 245, 36.9),
)
# Façade metres → photo pixels, least-squares fit to the two tables above (rms 0.12 m, max 0.37 m;
# tests/test_falling_clips.py checks it against them).
PHOTO_TO_IMAGE = np.array([
    [5.3410918920e+00, 4.6998692327e-01, 1.5213784446e+02],
    [-8.1236159162e+00, -1.8077214200e+01, 5.4923630242e+02],
    [-1.5197877926e-02, 2.2978612758e-03, 1.0000000000e+00],
])
PHOTO_SIZE = (868, 600)
PHOTO_FACADE_LENGTH_M = 45.0  # the façade runs out of the photo on the right
PHOTO_WINDOW_COLUMNS_M = tuple(4.5 + 3.6 * k for k in range(0, 10))  # slots and joints seen in the photo


def _photo_facade(width: int, height: int) -> _Facade:
    path = samples_dir() / PHOTO_NAME
    image = cv2.imread(str(path)) if path.exists() else None
    if image is None:
        raise ClipRenderError(
            f"the façade photo {path} is missing or unreadable: set ONEMAP_SAMPLES to the folder holding "
            f"{PHOTO_NAME} (see ../shared/data/SOURCES.md), or use background='generated'"
        )
    # Scaled to the clip size (a plain resize, so the sides may stretch); the homography follows.
    sx, sy = width / PHOTO_SIZE[0], height / PHOTO_SIZE[1]
    scale = np.diag([sx, sy, 1.0])
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if sx < 1 else cv2.INTER_CUBIC)
    return _Facade(
        image=resized, to_image=scale @ PHOTO_TO_IMAGE, length_m=PHOTO_FACADE_LENGTH_M, height_m=21.0,
        floor_height_m=3.0, ground_floor=1, release_floors=(3, 7),
        window_columns_m=list(PHOTO_WINDOW_COLUMNS_M), column_width_m=3.6, building="BLD-PHOTO",
    )


def _generated_facade(width: int, height: int, rng: np.random.Generator) -> _Facade:
    floors = int(rng.integers(6, 31))
    floor_h = float(rng.uniform(2.9, 3.3))
    pitch = float(rng.uniform(3.0, 4.2))
    # Wide enough to look like a residential slab (at most ~2.2 times as tall as wide).
    columns = int(rng.integers(max(4, math.ceil(floors * floor_h / (2.2 * pitch))), 19))
    length = columns * pitch  # whole bays, so that column k spans [(k-1)·pitch, k·pitch)
    tall = floors * floor_h + float(rng.uniform(0.6, 1.5))  # a parapet above the top floor
    hfov = float(rng.uniform(45.0, 75.0))
    yaw = float(rng.uniform(-32.0, 32.0))
    # From far enough back to see the whole façade to close enough to see about half of it.
    span = max(length, tall * width / height)
    distance = span / (2 * math.tan(math.radians(hfov) / 2)) * float(rng.uniform(0.5, 1.15))
    distance = max(distance, 15.0)
    mount = float(rng.uniform(1.5, 9.0))
    tilt = math.degrees(math.atan2(tall * float(rng.uniform(0.4, 0.6)) - mount, distance))
    cam_x = length / 2 - distance * math.tan(math.radians(yaw))
    camera = PinholeCamera(x=cam_x, y=-distance, height=mount, heading_deg=yaw % 360, tilt_deg=tilt,
                           hfov_deg=hfov, width=width, height_px=height)
    corners = np.array([[0.0, 0.0], [length, 0.0], [length, tall], [0.0, tall]])
    image_corners = camera.project(np.column_stack([corners[:, 0], np.zeros(4), corners[:, 1]]))
    to_image = cv2.getPerspectiveTransform(corners.astype(np.float32), image_corners.astype(np.float32))
    image = _paint_generated(rng, width=width, height=height, to_image=to_image, length=length, tall=tall,
                             floors=floors, floor_h=floor_h, columns=columns, pitch=pitch)
    return _Facade(
        image=image, to_image=to_image.astype(np.float64), length_m=length, height_m=tall, floor_height_m=floor_h,
        ground_floor=1, release_floors=(2, floors), window_columns_m=[pitch * (k + 0.5) for k in range(columns)],
        column_width_m=pitch,
        building=f"BLD-SYN-{int(rng.integers(1, 10_000)):04d}",
    )


_WALL_COLOURS = ((200, 210, 215), (150, 160, 165), (120, 170, 205), (70, 90, 160), (225, 230, 232), (170, 200, 215), (95, 100, 105))  # BGR


def _paint_generated(rng, *, width, height, to_image, length, tall, floors, floor_h, columns, pitch) -> np.ndarray:
    """Sky and ground, then the façade texture (wall, slabs, windows, noise) warped into the view."""
    sky_top, sky_low = rng.uniform([150, 110, 60], [235, 200, 140]), rng.uniform([200, 180, 150], [250, 240, 230])
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    image = (sky_top * (1 - t) + sky_low * t) * np.ones((1, width, 1))
    ground = rng.uniform([40, 60, 50], [110, 130, 120])
    image[int(height * rng.uniform(0.8, 1.0)):] = ground
    ppm = max(4.0, min(60.0, 4000.0 / max(length, tall)))  # texture pixels per façade metre
    tw, th = int(math.ceil(length * ppm)), int(math.ceil(tall * ppm))
    wall = np.array(_WALL_COLOURS[int(rng.integers(0, len(_WALL_COLOURS)))], float) * rng.uniform(0.8, 1.1, size=3)
    tex = np.empty((th, tw, 3), np.float32)
    tex[:] = wall
    low = cv2.resize(rng.normal(0, 1, size=(max(2, th // 40), max(2, tw // 40), 1)).astype(np.float32), (tw, th))
    tex += low[..., None] * rng.uniform(3, 12) + rng.normal(0, rng.uniform(2, 7), size=(th, tw, 1)).astype(np.float32)
    slab = wall * rng.uniform(0.55, 0.85)
    glass_base = rng.uniform([40, 40, 30], [120, 110, 100])
    win_w, win_h, sill = pitch * rng.uniform(0.35, 0.7), floor_h * rng.uniform(0.4, 0.6), rng.uniform(0.8, 1.0)
    for floor in range(floors):
        y0 = tall - floor * floor_h  # texture rows run downward
        cv2.rectangle(tex, (0, int((y0 - 0.25) * ppm)), (tw, int(y0 * ppm)), slab.tolist(), -1)
        if floor == 0 and rng.random() < 0.5:
            continue  # a ground floor without windows (shop shutters)
        for col in range(columns):
            cx = pitch * (col + 0.5)
            glass = np.clip(glass_base * rng.uniform(0.7, 1.5), 0, 255)
            x0, x1 = int((cx - win_w / 2) * ppm), int((cx + win_w / 2) * ppm)
            top, bottom = int((y0 - sill - win_h) * ppm), int((y0 - sill) * ppm)
            cv2.rectangle(tex, (x0, top), (x1, bottom), glass.tolist(), -1)
            cv2.rectangle(tex, (x0, top), (x1, bottom), (wall * 0.9).tolist(), max(1, int(ppm * 0.08)))
    to_tex = np.array([[ppm, 0, 0], [0, -ppm, tall * ppm], [0, 0, 1]])
    warp = to_image.astype(np.float64) @ np.linalg.inv(to_tex)
    facade = cv2.warpPerspective(np.clip(tex, 0, 255).astype(np.uint8), warp, (width, height), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((th, tw), 255, np.uint8), warp, (width, height), flags=cv2.INTER_LINEAR)
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    return np.clip(image * (1 - alpha) + facade * alpha, 0, 255).astype(np.uint8)


def _calibration(facade: _Facade, rng: np.random.Generator) -> dict:
    """The camera calibration JSON: the façade rectangle's visible part, as image ↔ façade points."""
    from shapely.geometry import Polygon, box
    from shapely import set_precision

    width, height = facade.image.shape[1], facade.image.shape[0]
    corners = np.array([[0.0, 0.0], [facade.length_m, 0.0], [facade.length_m, facade.height_m], [0.0, facade.height_m]])
    quad = Polygon(facade.project(corners))
    visible = quad.intersection(box(0, 0, width, height))
    image_points = np.asarray(set_precision(visible, 0.1).exterior.coords)[:-1]
    facade_points = cv2.perspectiveTransform(image_points.reshape(-1, 1, 2), np.linalg.inv(facade.to_image)).reshape(-1, 2)
    lon = DEMO_CENTRE[0] + float(rng.uniform(-0.004, 0.004))
    lat = DEMO_CENTRE[1] + float(rng.uniform(-0.003, 0.003))
    return {
        "image_size": [width, height],
        "facade": {
            "building": facade.building,
            "origin": [round(lon, 7), round(lat, 7)],
            "azimuth_deg": round(float(rng.uniform(0, 360)), 2),
            "floor_height_m": round(facade.floor_height_m, 3),
            "ground_floor": facade.ground_floor,
            "column_width_m": round(facade.column_width_m, 3),
            "image_points": np.round(image_points, 1).tolist(),
            "facade_points": np.round(facade_points, 3).tolist(),
        },
    }


# ---------------------------------------------------------------------------------------------
# things that move: drops and distractors share one shape
# ---------------------------------------------------------------------------------------------


@dataclass
class _Mover:
    """Something drawn over the background: sub-step image positions, shapes and looks per frame."""

    first_frame: int
    positions: np.ndarray  # (frames × SUBSTEPS × 2) image points over each frame's exposure
    sizes: np.ndarray  # (frames,) largest extent in pixels
    angles: np.ndarray  # (frames,) radians
    shape: object  # unit polygon (K×2) or a callable frame → unit polygon
    colour: tuple[float, float, float]
    opacity: float = 1.0
    blur: float = 0.0  # Gaussian sigma as a fraction of the size (out of focus)

    def polygon(self, k: int) -> np.ndarray:
        return self.shape(k) if callable(self.shape) else self.shape


_SHAPES = {
    "ball": np.array([[math.cos(a) * 0.5, math.sin(a) * 0.5] for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)]),
    "box": np.array([[-0.35, -0.35], [0.35, -0.35], [0.35, 0.35], [-0.35, 0.35]]),
    "bottle": np.array([[-0.5, -0.14], [0.3, -0.14], [0.5, -0.06], [0.5, 0.06], [0.3, 0.14], [-0.5, 0.14]]),
    "stick": np.array([[-0.5, -0.07], [0.5, -0.07], [0.5, 0.07], [-0.5, 0.07]]),  # a cigarette end, a chopstick
    "bag": np.array([[-0.5, -0.2], [-0.1, -0.45], [0.4, -0.3], [0.5, 0.15], [0.1, 0.45], [-0.4, 0.3]]),
}
_OBJECT_COLOURS = ([30, 30, 35], [60, 50, 45], [235, 235, 230], [210, 215, 225], [40, 40, 180], [170, 120, 40], [60, 160, 60])


def _drop_starts(rng: np.random.Generator, *, drops: int, fps: float, frames: int) -> list[int]:
    """Release frames: after 1 s (a background to learn), leaving ≥2 s of clip for the fall."""
    latest = max(int(fps * 1.0) + 1, frames - int(fps * 2.5))
    return sorted(int(rng.integers(int(fps * 1.0), latest)) for _ in range(drops))


def _drop_starts_apart(rng: np.random.Generator, *, drops: int, fps: float, frames: int,
                       gap_s: tuple[float, float]) -> list[int]:
    """Release frames one after another, ``gap_s`` seconds apart, the last leaving ≥2.5 s of clip."""
    gaps = [int(round(rng.uniform(*gap_s) * fps)) for _ in range(drops - 1)]
    latest = max(int(fps * 1.0) + 1, frames - int(fps * 2.5) - sum(gaps))
    starts = [int(rng.integers(int(fps * 1.0), latest))]
    for gap in gaps:
        starts.append(starts[-1] + max(gap, 1))
    return starts


def _wall_colour(facade: _Facade) -> np.ndarray:
    """The façade's typical colour (BGR): the median over the visible façade, where wall outnumbers glass."""
    corners = np.array([[0.0, 0.0], [facade.length_m, 0.0], [facade.length_m, facade.height_m], [0.0, facade.height_m]])
    mask = np.zeros(facade.image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(facade.project(corners)).astype(np.int32)], 255)
    pixels = facade.image[mask > 0]
    return np.median(pixels, axis=0) if len(pixels) else np.median(facade.image.reshape(-1, 3), axis=0)


def _drop(rng, facade: _Facade, *, start: int, frames: int, fps: float, exposure: float, size: float,
          column: int | None = None, near_floor: int | None = None, wall: np.ndarray | None = None):
    """A thrown or dropped object: gravity and quadratic drag from a window sill, projected into the image.

    ``column`` (0-based) fixes the window column it is let go from, ``near_floor`` puts it at most two
    floors from that floor, and ``wall`` paints it nearly that colour.
    """
    width, height = facade.image.shape[1], facade.image.shape[0]
    fixed_column = column
    for _ in range(200):
        floor = int(rng.integers(facade.release_floors[0], facade.release_floors[1] + 1))
        column = int(rng.integers(0, len(facade.window_columns_m)))
        if fixed_column is not None:
            column = fixed_column
        if near_floor is not None:
            lo, hi = facade.release_floors
            floor = int(np.clip(near_floor + int(rng.integers(-2, 3)), lo, hi))
        u0 = facade.window_columns_m[column] + float(rng.normal(0, 0.25))
        v0 = (floor - facade.ground_floor) * facade.floor_height_m + float(rng.uniform(0.9, 1.4))  # sill height
        x0, y0 = facade.project(np.array([[u0, v0]]))[0]
        if not (0.04 * width < x0 < 0.96 * width and 0.03 * height < y0 < 0.85 * height):
            continue
        pushed = rng.random() < 0.6
        vel = np.array([
            float(rng.normal(0, 0.8 if pushed else 0.2)),  # along the façade
            float(rng.uniform(0.3, 1.8)) if pushed and rng.random() < 0.5 else 0.0,  # a small upward toss
            float(rng.uniform(0.5, 3.0)) if pushed else float(rng.uniform(0.0, 0.4)),  # out from the wall
        ])
        drag = _log_uniform(rng, 0.003, 0.12)  # per metre: a dense object … a light bag
        track = _ballistic(np.array([u0, v0, 0.3]), vel, drag=drag, fps=fps, steps=frames - start, exposure=exposure)
        image = facade.project(track[..., :2].reshape(-1, 2)).reshape(track.shape[0], SUBSTEPS, 2)
        centre = image.mean(axis=1)
        inside = ((centre[:, 0] >= 0) & (centre[:, 0] < width) & (centre[:, 1] >= 0) & (centre[:, 1] < height)
                  & (track[:, -1, 1] > 0.0))
        visible = int(np.argmin(inside)) if not inside.all() else len(inside)  # frames until it first leaves
        if visible < 8:
            continue
        scale = facade.scale_at(track[:visible, -1, :2])
        sizes = size * scale / scale[0]  # the size changes with the façade's perspective
        shape_name = str(rng.choice(list(_SHAPES)))
        colour = np.array(_OBJECT_COLOURS[int(rng.integers(0, len(_OBJECT_COLOURS)))], float) * rng.uniform(0.85, 1.15)
        if wall is not None:  # within a few levels of the wall in every channel: seen mainly against windows
            colour = wall + rng.uniform(-8.0, 8.0, size=3)
        spin = float(rng.uniform(-12, 12))  # rad/s: it tumbles
        angle0 = float(rng.uniform(0, 2 * math.pi))
        mover = _Mover(
            first_frame=start, positions=image[:visible], sizes=sizes,
            angles=angle0 + spin * np.arange(visible) / fps, shape=_SHAPES[shape_name],
            colour=tuple(np.clip(colour, 0, 255).tolist()), opacity=1.0,
        )
        truth = DropTruth(
            frame_start=start, frame_end=start + visible - 1, origin_floor=facade.floor_of(v0),
            origin_column=facade.column_of(u0), size_px=round(size, 2),
            release_image=(round(float(x0), 2), round(float(y0), 2)), release_facade=(round(u0, 3), round(v0, 3)),
            path=tuple((round(float(x), 2), round(float(y), 2)) for x, y in centre[:visible]),
        )
        return mover, truth
    raise ClipRenderError("no window of this façade is far enough inside the image for a drop; try another seed")


def _ballistic(p0: np.ndarray, v0: np.ndarray, *, drag: float, fps: float, steps: int, exposure: float) -> np.ndarray:
    """Positions (u, v, w) for ``steps`` frames × SUBSTEPS samples over each frame's exposure (ends at the frame time)."""
    dt = 1.0 / (fps * SUBSTEPS)
    # Sample times of frame k: k/fps - exposure/fps * (1 - j/(SUBSTEPS-1)), clamped at release.
    offsets = exposure / fps * (1.0 - np.arange(SUBSTEPS) / (SUBSTEPS - 1))
    times = (np.arange(steps)[:, None] / fps - offsets[None, :]).clip(min=0.0)
    fine = int(math.ceil(steps * SUBSTEPS)) + 1
    pos, vel = p0.astype(float).copy(), v0.astype(float).copy()
    trace = np.empty((fine, 3))
    for i in range(fine):
        trace[i] = pos
        acc = np.array([0.0, -GRAVITY, 0.0]) - drag * np.linalg.norm(vel) * vel
        vel = vel + acc * dt
        pos = pos + vel * dt
    index = times / dt
    lo = np.floor(index).astype(int).clip(0, fine - 2)
    frac = (index - lo)[..., None]
    return trace[lo] * (1 - frac) + trace[lo + 1] * frac


def _bird(rng, facade: _Facade, *, frames: int, fps: float, exposure: float) -> _Mover:
    """A bird crossing the view: flapping, gliding, or landing on a ledge (decelerating to a stop)."""
    width, height = facade.image.shape[1], facade.image.shape[0]
    mode = str(rng.choice(["flap", "glide", "land"]))
    start = int(rng.integers(0, max(1, frames - int(fps))))
    n = frames - start
    t = np.arange(n * SUBSTEPS).reshape(n, SUBSTEPS) / (fps * SUBSTEPS)
    side = 1 if rng.random() < 0.5 else -1
    p0 = np.array([-0.05 * width if side > 0 else 1.05 * width, rng.uniform(0.05, 0.7) * height])
    speed = float(rng.uniform(120, 450))
    heading = math.radians(float(rng.uniform(-25, 30)))  # positive: descending
    direction = np.array([side * math.cos(heading), math.sin(heading)])
    if mode == "land":
        # Constant deceleration to a stop at a ledge within the view, then it sits still.
        target = np.array([rng.uniform(0.2, 0.8) * width, rng.uniform(0.15, 0.75) * height])
        dist = float(np.linalg.norm(target - p0))
        direction = (target - p0) / dist
        duration = 2 * dist / speed
        tt = np.minimum(t, duration)
        along = speed * tt - 0.5 * (speed / duration) * tt**2
        perched = np.arange(n) / fps >= duration
    else:
        along = speed * t
        perched = np.zeros(n, bool)
    pos = p0 + along[..., None] * direction
    bob = float(rng.uniform(1, 6)) * np.sin(2 * math.pi * float(rng.uniform(0.5, 2)) * t)
    pos[..., 1] += bob
    size = float(rng.uniform(8, 34))
    flap_hz = float(rng.uniform(3, 8))
    phase = np.sin(2 * math.pi * flap_hz * np.arange(n) / fps)

    def wings(k: int) -> np.ndarray:
        lift = 0.05 if mode == "glide" else 0.45 * phase[k]
        if perched[k]:
            lift = -0.1  # wings folded
        return np.array([[-0.5, -lift], [-0.12, 0.02], [0.0, 0.1], [0.12, 0.02], [0.5, -lift], [0.1, -0.05], [0.0, 0.0], [-0.1, -0.05]])

    colour = [(40, 40, 45), (110, 110, 115), (200, 200, 205)][int(rng.integers(0, 3))]
    return _Mover(first_frame=start, positions=pos, sizes=np.full(n, size), angles=np.zeros(n),
                  shape=wings, colour=colour)


def _insect(rng, facade: _Facade, *, frames: int, fps: float, exposure: float) -> _Mover:
    """An insect close to the lens: a big, soft, half-transparent blob darting about."""
    width, height = facade.image.shape[1], facade.image.shape[0]
    start = int(rng.integers(0, max(1, frames - int(fps))))
    n = min(frames - start, int(fps * rng.uniform(1.0, 4.0)))
    dt = 1.0 / (fps * SUBSTEPS)
    pos = np.array([rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height])
    vel = rng.normal(0, 250, size=2)
    trace = np.empty((n * SUBSTEPS, 2))
    for i in range(n * SUBSTEPS):
        vel = vel * 0.985 + rng.normal(0, 900, size=2) * math.sqrt(dt) * 8  # erratic: random kicks
        pos = pos + vel * dt
        trace[i] = pos
    size = float(rng.uniform(18, 80))
    return _Mover(first_frame=start, positions=trace.reshape(n, SUBSTEPS, 2), sizes=np.full(n, size),
                  angles=np.zeros(n), shape=_SHAPES["ball"], colour=(25, 25, 25),
                  opacity=float(rng.uniform(0.25, 0.6)), blur=0.25)


def _leaf(rng, facade: _Facade, *, frames: int, fps: float, exposure: float) -> _Mover:
    """A leaf fluttering down in front of the façade: slow, swaying, no steady acceleration."""
    width, height = facade.image.shape[1], facade.image.shape[0]
    start = int(rng.integers(0, max(1, frames - int(fps))))
    n = frames - start
    for _ in range(100):
        u0 = float(rng.uniform(0.1, 0.9)) * facade.length_m
        v0 = float(rng.uniform(0.4, 0.95)) * facade.height_m
        x0, y0 = facade.project(np.array([[u0, v0]]))[0]
        if 0 <= x0 < width and 0 <= y0 < 0.8 * height:
            break
    t = np.arange(n * SUBSTEPS).reshape(n, SUBSTEPS) / (fps * SUBSTEPS)
    fall = float(rng.uniform(0.6, 1.6))  # terminal speed, m/s
    sway, period = float(rng.uniform(0.3, 1.5)), float(rng.uniform(0.8, 2.5))
    w = 2 * math.pi / period
    v = v0 - fall * (t - np.sin(2 * w * t) / (2 * w) * 0.8)  # speed pulses twice per swing
    u = u0 + sway * np.sin(w * t)
    image = facade.project(np.stack([u, v], -1).reshape(-1, 2)).reshape(n, SUBSTEPS, 2)
    size = float(rng.uniform(5, 20))
    colour = [(40, 110, 60), (30, 80, 140), (40, 150, 180)][int(rng.integers(0, 3))]
    return _Mover(first_frame=start, positions=image, sizes=np.full(n, size),
                  angles=0.8 * np.sin(w * np.arange(n) / fps), shape=_SHAPES["bag"], colour=colour)


_DISTRACTORS = {"bird": _bird, "insect": _insect, "leaf": _leaf}


# ---------------------------------------------------------------------------------------------
# conditions: shake, light, rain
# ---------------------------------------------------------------------------------------------


@dataclass
class _Conditions:
    shake: np.ndarray | None  # (frames × 2) image offsets
    gain: np.ndarray | None  # (frames,) brightness factors
    rain: float  # streaks per frame (0: dry)
    rain_angle: float

    @classmethod
    def make(cls, rng, *, frames: int, fps: float, jitter_px: float, rain: bool, light_change: bool) -> "_Conditions":
        t = np.arange(frames) / fps
        shake = None
        if jitter_px > 0:
            wobble = sum(np.sin(2 * math.pi * rng.uniform(0.5, 6.0) * t[:, None] + rng.uniform(0, 2 * math.pi, 2))
                         for _ in range(3)) / 3
            shake = jitter_px * (0.75 * wobble + 0.25 * rng.normal(0, 1, size=(frames, 2)))
        gain = None
        if light_change:
            ramp_start, ramp_len = rng.uniform(0, t[-1]), rng.uniform(0.5, 3.0)
            target = rng.uniform(0.65, 1.25)  # brighter would only saturate the sunlit photo
            gain = 1 + (target - 1) * np.clip((t - ramp_start) / ramp_len, 0, 1)
            gain *= 1 + rng.uniform(0.0, 0.04) * np.sin(2 * math.pi * rng.uniform(1, 5) * t)  # mains flicker, aliased
            for _ in range(int(rng.integers(0, 3))):  # brief flashes (a door, a car's lights)
                k = int(rng.integers(0, frames))
                gain[k:k + int(rng.integers(1, 4))] *= rng.uniform(1.15, 1.4)
        return cls(shake=shake, gain=gain, rain=float(rng.uniform(150, 600)) if rain else 0.0,
                   rain_angle=float(rng.uniform(-0.25, 0.25)))


# ---------------------------------------------------------------------------------------------
# rendering and writing
# ---------------------------------------------------------------------------------------------


def _write_video(path: Path, background: np.ndarray, movers: list[_Mover], cond: _Conditions, *, fps: float, frames: int, seed: int) -> None:
    """Composite every frame and write the clip as MJPG at high quality (small objects survive)."""
    height, width = background.shape[:2]
    tmp = path.with_name(path.stem + ".part.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise ClipRenderError(f"OpenCV cannot write MJPG video to {tmp}")
    rng = np.random.default_rng([seed, 99])
    noise = _noise_bank(rng, seed=seed, width=width, height=height)
    try:
        for k in range(frames):
            frame = background.copy()
            for mover in movers:
                _stamp(frame, mover, k - mover.first_frame)
            if cond.shake is not None:
                m = np.float32([[1, 0, cond.shake[k, 0]], [0, 1, cond.shake[k, 1]]])
                frame = cv2.warpAffine(frame, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            if cond.gain is not None:
                frame = cv2.convertScaleAbs(frame, alpha=float(cond.gain[k]))
            if cond.rain:
                _rain(frame, rng, cond)
            dx, dy = (int(v) for v in rng.integers(0, NOISE_MARGIN, 2))
            frame = cv2.add(frame, noise[k % len(noise)][dy:dy + height, dx:dx + width], dtype=cv2.CV_8U)
            writer.write(frame)
    finally:
        writer.release()
    tmp.replace(path)


NOISE_MARGIN = 64


def _noise_bank(rng: np.random.Generator, *, seed: int, width: int, height: int) -> list[np.ndarray]:
    """A few frames of sensor noise, a little larger than the clip: each frame takes a shifted window of one."""
    cv2.setRNGSeed(int(seed) % (2**31))  # cv2.randn is several times faster than numpy; seeded, it repeats
    sigma = float(rng.uniform(1.0, 2.5))
    bank = []
    for _ in range(5):
        noise = np.empty((height + NOISE_MARGIN, width + NOISE_MARGIN, 3), np.int16)
        cv2.randn(noise, 0, sigma)
        bank.append(noise)
    return bank


def _stamp(frame: np.ndarray, mover: _Mover, k: int) -> None:
    """Draw a mover's frame ``k``: its shape at every exposure sample, averaged (motion blur)."""
    if k < 0 or k >= len(mover.positions):
        return
    pts = mover.positions[k]
    size = float(mover.sizes[k])
    pad = size * (0.6 + 3 * mover.blur) + 2
    x0, y0 = int(math.floor(pts[:, 0].min() - pad)), int(math.floor(pts[:, 1].min() - pad))
    x1, y1 = int(math.ceil(pts[:, 0].max() + pad)), int(math.ceil(pts[:, 1].max() + pad))
    h, w = frame.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    c, s = math.cos(mover.angles[k]), math.sin(mover.angles[k])
    poly = mover.polygon(k) @ np.array([[c, s], [-s, c]]) * size
    acc = np.zeros((y1 - y0, x1 - x0), np.float32)
    layer = np.zeros_like(acc, dtype=np.uint8)
    for p in pts:
        layer[:] = 0
        shifted = np.round((poly + p - [x0, y0]) * 16).astype(np.int32)  # 4 fractional bits
        cv2.fillPoly(layer, [shifted], 255, lineType=cv2.LINE_AA, shift=4)
        if size < 2.5:  # too small for fillPoly to cover: a soft dot
            cv2.circle(layer, tuple(np.round((p - [x0, y0]) * 16).astype(int)), int(size * 8), 255, -1, cv2.LINE_AA, 4)
        acc += layer
    alpha = acc / (255.0 * len(pts)) * mover.opacity
    if mover.blur:
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, mover.blur * size))
    alpha = alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0, None]
    roi = frame[cy0:cy1, cx0:cx1].astype(np.float32)
    frame[cy0:cy1, cx0:cx1] = np.clip(roi * (1 - alpha) + np.float32(mover.colour) * alpha + 0.5, 0, 255).astype(np.uint8)


def _rain(frame: np.ndarray, rng: np.random.Generator, cond: _Conditions) -> None:
    """Faint bright streaks, new ones every frame, slanted by the wind."""
    h, w = frame.shape[:2]
    count = int(cond.rain * (w * h) / (1280 * 720))
    layer = np.zeros((h, w), np.uint8)
    x = rng.uniform(0, w, count)
    y = rng.uniform(0, h, count)
    length = rng.uniform(12, 45, count) * h / 720
    dx, dy = length * math.sin(cond.rain_angle), length * math.cos(cond.rain_angle)
    level = rng.integers(18, 50, count)
    for i in range(count):
        cv2.line(layer, (int(x[i]), int(y[i])), (int(x[i] + dx[i]), int(y[i] + dy[i])), int(level[i]), 1, cv2.LINE_AA)
    cv2.add(frame, cv2.merge([layer, layer, layer]), dst=frame)
