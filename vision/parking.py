"""Parking (智慧停车): spot occupancy and illegal parking (违章停车) from a camera with a ground calibration.

The spots (``parking_spots``) and no-parking zones (``no_parking_zones``) are projected into the
image through the camera's ground calibration. Each spot is a *cell*; a zone is cut into cells of
about a vehicle's length along its longer side. Per frame, on a copy at most ``work_width`` wide:

1. features, all ratios so that shadows, dusk and night change them little: the gradient of
   log-brightness (an edge is a brightness *ratio*), and the normalised colour (r, g shares);
2. per cell, over the part of it that no vehicle in a nearer occupied cell hides (a vehicle is a
   box ``vehicle_height_m`` tall over its cell, lifted into the image from the camera's position
   and mounting height), a score: for a *spot*, the spot model's P(vehicle) of that view
   (``vision.parking_model``: a small MLP over its brightness, detail edges and colour against
   the road around it, trained on clips the project renders of other cameras), judged afresh on
   every frame; for a *zone* cell (or a spot with no road around it to compare with), the share
   of pixels that differ from the cell's learnt empty view (gradient or colour), or, before one
   has been learnt, the share of edge pixels and of pixels unlike the road around it;
3. hysteresis and dwell: a free spot turns occupied only after its P(vehicle) stayed above
   ``model_occupied_p`` for ``occupy_seconds`` (a car driving past does not), an occupied one
   turns free after it stayed below ``model_free_p`` for ``vacate_seconds``; a spot not judged
   yet waits while the model is unsure (between the two); zone cells do the same with
   ``occupied_share`` and ``free_share``. A spot not judged yet is first judged by the likelier
   side after ``INITIAL_SECONDS``. A free zone cell's empty view is learnt as it goes (it follows
   slow light changes);
3a. what hides what, from the detector's own states: an occupied (or arriving) cell hides the
   cells behind it; a spot never seen (hidden since the start) *may* hide them, so a spot behind
   it is judged on the part no vehicle in it would hide when that part is large enough, and
   otherwise on what is left only to turn free (road seen there means no car in either; a
   vehicle seen there may be the one in front, so a free spot that sees one turns ``unknown``);
   a spot that is mostly hidden keeps its state, unless its roof band (where a vehicle in it
   shows above the ones in front) changes for ``hidden_change_seconds``: a car came or went
   unseen, and the spot turns ``unknown`` rather than keep a stale state;
4. illegal parking: a zone with an occupied cell for longer than its reason's limit (a fire lane:
   ``fire_lane_limit_seconds``) raises one ``illegal_parking`` event, located at the occupied cells
   on the ground; the zone raises again only after it has been free.

Occupancy changes go to ``on_occupancy`` (``onemap vision run`` writes them to ``parking_spots``
in a transaction each); events are :class:`~vision.events.Lifecycle` steps like the other stages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.vocabulary import PARKING_CATEGORY
from vision.calibration import METRIC_CRS, Calibration, CalibrationError, _transformer
from vision.config import ParkingConfig
from vision.events import Lifecycle, VisionEvent
from vision.parking_model import SpotModel, default_spot_model, spot_appearance
from vision.sources import Frame

EVENT_TYPE = PARKING_CATEGORY  # "illegal_parking"
FREE, OCCUPIED, UNKNOWN = "free", "occupied", "unknown"
INITIAL_SECONDS = 1.0  # a spot not judged yet is first judged after this long of agreeing evidence, either way
NOISE_FACTOR = 3.0  # an edge is at least this many times the frame's median gradient (night noise)
LAYOUT_RADIUS_M = 150.0  # spots and zones this near a camera are looked for in the layers
MAX_PIXEL = 1e5  # projected points further out than this lie too near the horizon to judge
OFFSET_SHARE = 0.15  # of the median grey level, added before the logarithm
DETAIL_SIGMA = 3.0  # px: brightness changes smoother than this are light, not things
RING_PX = 8  # the road around a cell it is compared with, before an empty view of it is learnt
ASPHALT_BRIGHTER = 0.3  # log-brightness above the road around it that is not asphalt (×1.35) ...
ASPHALT_DARKER = 0.5  # ... and below it (×0.6: glass, tyres, the underside; the road around shares a shadow)
BODY_HEIGHT_M = 1.0  # a car's body (bonnet, boot) below its cabin
CABIN_SHARE = 0.55  # ... and the share of its length the cabin covers, in the middle
FREE_BEHIND_P = 0.02  # P(vehicle) below which a spot behind a spot never seen may be judged free
BAND_CHANGED_SHARE = 0.5  # of a hidden spot's roof band unlike its view when it was hidden: a car came or went


class ParkingSetupError(CalibrationError):
    """A camera cannot watch parking: no ground calibration, or nothing of the layout in view."""


@dataclass(frozen=True)
class Place:
    """A parking spot or a no-parking zone from the layers: its outline in lon/lat."""

    code: str
    ring: tuple  # ((lon, lat), ...), the exterior ring
    id: int | None = None
    reason: str | None = None  # a zone's: fire_lane, hydrant, entrance, other; None for a spot
    name: str = ""


@dataclass(frozen=True)
class ParkingLayout:
    """What a camera watches: spots, zones, and where the camera is (for what vehicles hide)."""

    spots: tuple[Place, ...] = ()
    zones: tuple[Place, ...] = ()
    camera_lonlat: tuple[float, float] | None = None
    camera_height_m: float | None = None


@dataclass(frozen=True)
class OccupancyChange:
    """A spot turned free or occupied (or was first judged)."""

    spot_id: int | None
    code: str
    occupancy: str
    t: float  # seconds from the start of the video, when the change was decided
    frame: int


@dataclass
class _Cell:
    key: str
    place: Place
    zone: bool
    footprint: object  # shapely polygon, metres
    distance: float  # metres from the camera (or a proxy: lower in the image is nearer)
    rect: tuple[int, int, int, int]  # x0, y0, x1, y1 of the inner mask in the working image
    inner: np.ndarray  # bool, the rect's pixels inside the (inset) cell
    box_full: tuple[int, int, int, int]  # x, y, w, h in full-resolution pixels
    silhouette: tuple | None = None  # (x0, y0, x1, y1, bool mask) of a vehicle in it, working image
    ring: tuple | None = None  # (x0, y0, x1, y1, bool mask): the road around it, the asphalt to compare with
    occluders: list = field(default_factory=list)  # (cell index, bool mask over rect)
    band_occluders: list = field(default_factory=list)  # (cell index, bool mask over the silhouette's box)
    band_view: tuple | None = None  # (gx, gy, r, g) over the silhouette's box since it was hidden
    band_doubt: float = 0.0  # seconds its roof band looked changed while it was hidden
    state: str = UNKNOWN
    doubt: float = 0.0  # seconds of evidence against the state
    since_t: float = 0.0
    since_frame: int = 0
    score: float = 0.0
    looked: bool | None = None  # whether its view said 'occupied' the last time it was seen (None: never seen)
    visible: float = 1.0
    bg: tuple | None = None  # (gx, gy, r, g) of the learnt empty view over rect


@dataclass
class _Zone:
    place: Place
    cells: list[int]
    limit: float
    occupied_since: tuple[float, int] | None = None  # (t, frame) it turned occupied
    reported: bool = False


class ParkingDetector:
    """Frames in; occupancy changes to ``on_occupancy``, illegal-parking lifecycle steps out."""

    def __init__(self, *, calibration: Calibration | None, width: int, height: int, layout: ParkingLayout,
                 config: ParkingConfig | None = None, fps: float = 25.0,
                 on_occupancy: Callable[[OccupancyChange], None] | None = None, spot_model: SpotModel | None = None):
        if calibration is None or calibration.ground is None:
            raise ParkingSetupError(
                'parking needs the camera\'s ground calibration (a "ground" block: ≥4 image points ↔ lon/lat) to '
                "put its spots and zones in the image; this camera has none")
        self.config = config or ParkingConfig()
        self.calibration = calibration
        self.width, self.height = width, height
        self.fps = fps if fps and fps > 0 else 25.0
        self.scale = min(1.0, self.config.work_width / width)
        self.small = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        self.on_occupancy = on_occupancy
        self.spot_model: SpotModel = spot_model or default_spot_model()
        self.layout = layout
        self.problems: list[str] = []  # places that could not be judged, and why
        self.out_of_view: list[str] = []  # places outside the frame (or too small in it)
        self.rejections: dict[str, int] = {}
        self.changes: list[OccupancyChange] = []
        self._camera_xy = self._camera_height = None
        if layout.camera_lonlat is not None and layout.camera_height_m:
            self._camera_xy = np.array(_transformer("EPSG:4326", METRIC_CRS).transform(*layout.camera_lonlat))
            self._camera_height = float(layout.camera_height_m)
        self.cells: list[_Cell] = []
        self.zones: list[_Zone] = []
        for place in layout.spots:
            self._add_cells(place, zone=False)
        for place in layout.zones:
            first = len(self.cells)
            self._add_cells(place, zone=True)
            if len(self.cells) > first:
                self.zones.append(_Zone(place=place, cells=list(range(first, len(self.cells))),
                                        limit=self.config.limit_for(place.reason or "other")))
        self._link_occluders()
        self._rings()
        self._next_event = 1
        self._dt = 1.0 / self.fps
        self._alpha = min(1.0, 1.0 / (self.config.background_seconds * self.fps))

    # -- public ------------------------------------------------------------------

    def occupancy(self) -> dict[str, str]:
        """Each judged spot's current state by its code."""
        return {c.place.code: c.state for c in self.cells if not c.zone}

    def process(self, frame: Frame) -> list[Lifecycle]:
        """Judge every cell on this frame; returns the illegal-parking steps it caused."""
        gx, gy, r, g, threshold, log = self._features(frame.image)
        self._grad = None  # |gx| + |gy|, made the first time a cell asks the spot model
        occupied = {k for k, c in enumerate(self.cells) if self._hides(c) == "yes"}
        maybe = {k for k, c in enumerate(self.cells) if self._hides(c) == "maybe"}
        for cell in self.cells:
            self._judge(cell, frame, gx, gy, r, g, threshold, occupied, maybe, log)
        return self._zones(frame)

    def _hides(self, cell: _Cell) -> str:
        """Whether a vehicle stands in the cell and hides the cells behind it on this frame: yes, maybe or no.

        Yes: occupied, arriving (a free cell in its dwell), or not judged yet but looking like a vehicle
        the last time it was seen. Maybe: never seen (hidden since the start, or since its roof band
        changed), or hidden with its roof band changing now. A spot behind a 'maybe' is judged on the
        part no 'maybe' vehicle would hide when that part is large enough; otherwise on what the 'yes'
        vehicles leave, where road seen means no car in either spot, but a vehicle seen may be the one
        in front: a free spot that sees one for ``occupy_seconds`` turns 'unknown', not occupied.
        A cell not judged yet that looks like road does not hide: the old rule hid behind every such
        cell, and a nearer spot the model was unsure of kept every spot behind it 'unknown' for minutes.
        """
        if cell.state == OCCUPIED:
            return "yes"
        if cell.band_doubt > 0:  # hidden, and a car may be arriving in it: it shows above the one in front
            return "maybe"
        if cell.state == FREE and cell.doubt > 0:
            return "yes"
        if cell.state == FREE:
            return "no"
        return "maybe" if cell.looked is None else "yes" if cell.looked else "no"

    def finish(self) -> list[Lifecycle]:
        """Nothing is left open: an illegal-parking event ends the moment it is raised."""
        return []

    # -- layout -------------------------------------------------------------------

    def _add_cells(self, place: Place, *, zone: bool) -> None:
        from shapely.geometry import Polygon

        what = f"{'zone' if zone else 'spot'} {place.code}"
        try:
            ring = np.asarray(place.ring, dtype=float)
            if ring.ndim != 2 or ring.shape[1] != 2 or len(ring) < 3 or not np.isfinite(ring).all():
                raise ValueError("needs at least 3 finite [lon, lat] points")
            x, y = _transformer("EPSG:4326", METRIC_CRS).transform(ring[:, 0], ring[:, 1])
            polygon = Polygon(np.column_stack([x, y]))
            if not polygon.is_valid or polygon.area < 0.5:
                raise ValueError(f"is not a valid polygon of at least 0.5 m² (area {polygon.area:.2f} m²)")
        except (TypeError, ValueError) as exc:
            self.problems.append(f"{what}: {exc}")
            return
        parts = _zone_cells(polygon, self.config.zone_cell_m) if zone else [polygon]
        for n, part in enumerate(parts):
            key = f"{place.code}#{n + 1}" if zone else place.code
            cell = self._cell(key, place, part, zone=zone)
            if isinstance(cell, str):
                if cell.startswith("out of view"):
                    self.out_of_view.append(key)
                else:
                    self.problems.append(f"{what}: {cell}")
                continue
            self.cells.append(cell)

    def _cell(self, key: str, place: Place, footprint, *, zone: bool):
        """A cell, or why there is none."""
        import cv2

        inner = footprint.buffer(-self.config.spot_inset_m, join_style=2)
        if inner.is_empty or inner.area < 0.25 * footprint.area:
            inner = footprint
        if inner.geom_type != "Polygon":
            inner = max(inner.geoms, key=lambda p: p.area)
        pixels = self.calibration.metric_to_image_many(np.asarray(inner.exterior.coords)[:-1])
        if not np.isfinite(pixels).all() or np.abs(pixels).max() > MAX_PIXEL:
            return "out of view (partly behind the camera, or at the horizon)"
        small = pixels * self.scale
        W, H = self.small
        x0, y0 = max(0, int(np.floor(small[:, 0].min()))), max(0, int(np.floor(small[:, 1].min())))
        x1, y1 = min(W, int(np.ceil(small[:, 0].max())) + 1), min(H, int(np.ceil(small[:, 1].max())) + 1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return "out of view"
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round(small - [x0, y0]).astype(np.int32)], 1)
        # keep off the painted lines: far away a spot's end lines are foreshortened to a pixel, which the
        # inset alone does not clear
        outline = self.calibration.metric_to_image_many(np.asarray(footprint.exterior.coords)) * self.scale
        clear = mask.copy()
        if np.isfinite(outline).all() and np.abs(outline).max() < MAX_PIXEL:
            cv2.polylines(clear, [np.round(outline - [x0, y0]).astype(np.int32)], True, 0, thickness=7)
        mask = cv2.erode(clear, np.ones((3, 3), np.uint8), borderValue=0)
        if int(mask.sum()) < self.config.min_spot_pixels:
            return "out of view (too small in the frame)"
        full = self.calibration.metric_to_image_many(np.asarray(footprint.exterior.coords)[:-1])
        fx0, fy0 = np.nanmin(full, axis=0)
        fx1, fy1 = np.nanmax(full, axis=0)
        box = (int(max(0, fx0)), int(max(0, fy0)), int(min(self.width, fx1) - max(0, fx0)),
               int(min(self.height, fy1) - max(0, fy0)))
        if self._camera_xy is not None:
            c = footprint.centroid
            distance = float(math.hypot(c.x - self._camera_xy[0], c.y - self._camera_xy[1]))
        else:
            distance = float(self.small[1] - small[:, 1].max())  # lower in the image is nearer
        cell = _Cell(key=key, place=place, zone=zone, footprint=footprint, distance=distance,
                     rect=(x0, y0, x1, y1), inner=mask.astype(bool), box_full=box)
        cell.silhouette = self._silhouette(footprint)
        return cell

    def _silhouette(self, footprint):
        """Where a vehicle standing on this footprint shows in the working image (None without the camera's pose).

        The vehicle is a body ``body_height_m`` tall over its whole length and a cabin
        ``vehicle_height_m`` tall over its middle ``CABIN_SHARE``: a box of the full height over the
        whole length would hide the spot behind that the camera in fact sees over the boot.
        """
        import cv2

        c = self.config
        if self._camera_xy is None or self._camera_height <= c.vehicle_height_m + 0.3:
            return None
        W, H = self.small
        hulls = []
        for length, height in ((c.vehicle_length_m, BODY_HEIGHT_M), (c.vehicle_length_m * CABIN_SHARE,
                                                                     c.vehicle_height_m)):
            ground = _vehicle_box(footprint, length, c.vehicle_width_m)
            # a point h above the ground is seen where its ray from the camera meets the ground
            lift = self._camera_height / (self._camera_height - height)
            top = self._camera_xy + (ground - self._camera_xy) * lift
            pixels = self.calibration.metric_to_image_many(np.vstack([ground, top])) * self.scale
            if not np.isfinite(pixels).all() or np.abs(pixels).max() > MAX_PIXEL:
                return None
            hulls.append(cv2.convexHull(pixels.astype(np.float32)).reshape(-1, 2))
        every = np.vstack(hulls)
        x0, y0 = max(0, int(np.floor(every[:, 0].min()))), max(0, int(np.floor(every[:, 1].min())))
        x1, y1 = min(W, int(np.ceil(every[:, 0].max())) + 1), min(H, int(np.ceil(every[:, 1].max())) + 1)
        if x1 <= x0 or y1 <= y0:
            return None
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for hull in hulls:
            cv2.fillPoly(mask, [np.round(hull - [x0, y0]).astype(np.int32)], 1)
        return (x0, y0, x1, y1, mask.astype(bool))

    def _link_occluders(self) -> None:
        """For each cell, the nearer cells whose vehicle would hide part of it, and which part (and of its band)."""
        for cell in self.cells:
            nearer = [(k, other) for k, other in enumerate(self.cells)
                      if other is not cell and other.silhouette is not None and other.distance < cell.distance]
            for k, other in nearer:
                hide = _covered(cell.rect, cell.inner, other.silhouette)
                if hide is not None:
                    cell.occluders.append((k, hide))
            if cell.silhouette is None:
                continue
            *box, mask = cell.silhouette
            for k, other in nearer:
                hide = _covered(tuple(box), mask, other.silhouette)
                if hide is not None:
                    cell.band_occluders.append((k, hide))

    def _rings(self) -> None:
        """Each cell's ring of road: its box grown by ``RING_PX``, less every cell and every parked vehicle's outline."""
        W, H = self.small
        taken = np.zeros((H, W), bool)
        for cell in self.cells:
            x0, y0, x1, y1 = cell.rect
            taken[y0:y1, x0:x1] |= cell.inner
            if cell.silhouette is not None:
                sx0, sy0, sx1, sy1, smask = cell.silhouette
                taken[sy0:sy1, sx0:sx1] |= smask
        for cell in self.cells:
            x0, y0, x1, y1 = cell.rect
            rx0, ry0 = max(0, x0 - RING_PX), max(0, y0 - RING_PX)
            rx1, ry1 = min(W, x1 + RING_PX), min(H, y1 + RING_PX)
            ring = ~taken[ry0:ry1, rx0:rx1]
            if ring.sum() >= 30:
                cell.ring = (rx0, ry0, rx1, ry1, ring)

    # -- per frame ----------------------------------------------------------------

    def _features(self, image: np.ndarray):
        import cv2

        small = image if self.scale == 1.0 else cv2.resize(image, self.small, interpolation=cv2.INTER_AREA)
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        smooth = cv2.GaussianBlur(grey, (5, 5), 1.0).astype(np.float32)
        # the offset keeps the darkest pixels' noise from exploding; it follows the scene's brightness, so a
        # dark car stays as far below the asphalt at night as by day
        offset = max(2.0, OFFSET_SHARE * float(np.median(grey[::8, ::8])))
        log = cv2.log(smooth + offset)
        # edges of the detail only: a smooth ramp (a lamp's pool of light, a shadow's penumbra) is its own
        # blur, so it leaves nothing, while a vehicle's edges are steps
        detail = log - cv2.GaussianBlur(log, (0, 0), DETAIL_SIGMA)
        gx = cv2.Sobel(detail, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(detail, cv2.CV_32F, 0, 1, ksize=3)
        noise = float(np.median(np.abs(gx[::4, ::4])) + np.median(np.abs(gy[::4, ::4])))
        threshold = max(self.config.edge_threshold, NOISE_FACTOR * noise)
        colour = cv2.GaussianBlur(small, (5, 5), 1.0).astype(np.float32)
        total = colour.sum(axis=2) + 60.0  # a dark pixel's colour is mostly noise: damp it
        return gx, gy, colour[..., 2] / total, colour[..., 1] / total, threshold, log

    def visible_mask(self, cell: _Cell, occupied: set[int]) -> np.ndarray:
        """The cell's pixels (over its rect) that no vehicle in a nearer cell of ``occupied`` hides."""
        hidden = [mask for k, mask in cell.occluders if k in occupied]
        return cell.inner & ~np.logical_or.reduce(hidden) if hidden else cell.inner

    def _enough(self, cell: _Cell, visible: np.ndarray) -> bool:
        """Whether this much of the cell is seen to judge it (``min_visible_share`` of it, and a few pixels)."""
        n = int(visible.sum())
        return n >= self.config.min_visible_share * int(cell.inner.sum()) and n >= self.config.min_spot_pixels // 2

    def appearance(self, cell: _Cell, visible: np.ndarray, gx, gy, r, g, log) -> np.ndarray | None:
        """The spot model's features of the cell's visible pixels (None without a ring of road around it)."""
        if cell.ring is None:
            return None
        if self._grad is None:
            self._grad = np.abs(gx) + np.abs(gy)
        return spot_appearance(log=log, grad=self._grad, r=r, g=g, rect=cell.rect, visible=visible, ring=cell.ring,
                               inner_pixels=int(cell.inner.sum()))

    def _unlike_asphalt(self, cell: _Cell, log, r, g) -> np.ndarray:
        """Pixels of the cell's rect much brighter, much darker or of another colour than the road around it."""
        x0, y0, x1, y1 = cell.rect
        if cell.ring is None:
            return np.zeros(cell.inner.shape, bool)
        rx0, ry0, rx1, ry1, ring = cell.ring
        ref_l = float(np.median(log[ry0:ry1, rx0:rx1][ring]))
        ref_r = float(np.median(r[ry0:ry1, rx0:rx1][ring]))
        ref_g = float(np.median(g[ry0:ry1, rx0:rx1][ring]))
        rel = log[y0:y1, x0:x1] - ref_l
        chroma = np.abs(r[y0:y1, x0:x1] - ref_r) + np.abs(g[y0:y1, x0:x1] - ref_g)
        return (rel > ASPHALT_BRIGHTER) | (rel < -ASPHALT_DARKER) | (chroma > 1.5 * self.config.chroma_threshold)

    def _judge(self, cell: _Cell, frame: Frame, gx, gy, r, g, threshold: float, occupied: set[int],
               maybe: set[int], log) -> None:
        c = self.config
        x0, y0, x1, y1 = cell.rect
        visible = self.visible_mask(cell, occupied | maybe)
        free_only = False  # judged on a view a vehicle in a nearer spot never seen may show in: only 'free' counts
        if not self._enough(cell, visible) and not cell.zone and any(k in maybe for k, _ in cell.occluders):
            visible, free_only = self.visible_mask(cell, occupied), True
        n_inner, n_visible = int(cell.inner.sum()), int(visible.sum())
        cell.visible = n_visible / max(n_inner, 1)
        if not self._enough(cell, visible):
            cell.doubt = max(0.0, cell.doubt - self._dt)  # hidden: it keeps its state ...
            self._watch_hidden(cell, frame, gx, gy, r, g, threshold, occupied | maybe)  # ... unless its roof band changes
            return
        cell.band_view, cell.band_doubt = None, 0.0
        cgx, cgy = gx[y0:y1, x0:x1], gy[y0:y1, x0:x1]
        cr, cg = r[y0:y1, x0:x1], g[y0:y1, x0:x1]
        if cell.zone and cell.bg is None:
            # a zone's painted hatching is all edges, so its empty view is learnt from the first frame: a
            # no-parking zone is taken to be empty when the camera starts
            self._learn(cell, cgx, cgy, cr, cg)
            cell.state, cell.since_t, cell.since_frame = FREE, frame.t, frame.index
            return
        features = None if cell.zone else self.appearance(cell, visible, gx, gy, r, g, log)
        if features is not None:
            # a spot is judged on its own view by the spot model, every frame: a learnt empty view would be
            # wrong whenever the first judgement was (a parked car learnt as the road, until it leaves)
            score = cell.score = self.spot_model.probability(features)
            # a spot not judged yet is judged by the likelier side (after a short dwell): waiting while the model
            # is unsure left spots the camera sees 'unknown' for minutes, and hiding the spots behind them
            says_occupied = (score >= c.model_free_p if cell.state == OCCUPIED
                             else score > c.model_occupied_p if cell.state == FREE else score > 0.5)
        else:  # a zone (its hatching is learnt as its empty view), or a spot with no road around it to compare
            if cell.ring is not None:  # the texture of the road around it: far away more of it shares a pixel
                rx0, ry0, rx1, ry1, ring = cell.ring
                local = np.abs(gx[ry0:ry1, rx0:rx1][ring]) + np.abs(gy[ry0:ry1, rx0:rx1][ring])
                threshold = max(threshold, NOISE_FACTOR * float(np.median(local)))
            edges = (np.abs(cgx) + np.abs(cgy)) > threshold
            if cell.bg is None:
                changed = edges | self._unlike_asphalt(cell, log, r, g)
            else:
                bgx, bgy, br, bg_ = cell.bg
                changed = ((np.abs(cgx - bgx) + np.abs(cgy - bgy)) > threshold) | (
                    (np.abs(cr - br) + np.abs(cg - bg_)) > c.chroma_threshold)
            score = cell.score = float(changed[visible].mean())
            if cell.state == OCCUPIED:
                says_occupied = score >= c.free_share
            elif cell.state == FREE:
                says_occupied = score > c.occupied_share
            else:
                says_occupied = score > (c.occupied_share + c.free_share) / 2
        if free_only and features is not None and not says_occupied and score >= FREE_BEHIND_P:
            # the model never saw a view with a vehicle in front in its training (those spots were left out), and a
            # dark roof there at night can pass for road: 'free' on such a view needs the model all but certain
            cell.doubt = max(0.0, cell.doubt - self._dt)
            return
        if free_only and says_occupied:  # a vehicle here, or the roof of one in the spot in front: cannot tell
            if cell.state == FREE:
                cell.doubt += self._dt
                if cell.doubt >= c.occupy_seconds:
                    self._flip(cell, UNKNOWN, frame)
                    cell.looked = None
            else:
                cell.doubt = max(0.0, cell.doubt - self._dt)
            return
        cell.looked = says_occupied
        wanted = OCCUPIED if says_occupied else FREE
        if wanted == cell.state:
            cell.doubt = max(0.0, cell.doubt - self._dt)
        else:
            cell.doubt += self._dt
            dwell = (min(INITIAL_SECONDS, c.vacate_seconds, c.occupy_seconds) if cell.state == UNKNOWN
                     else c.vacate_seconds if wanted == FREE
                     else c.zone_occupy_seconds if cell.zone else c.occupy_seconds)
            if cell.doubt >= dwell:
                self._flip(cell, wanted, frame)
        if features is None and cell.state == FREE and not says_occupied and cell.visible >= 0.999:
            self._learn(cell, cgx, cgy, cr, cg)

    def _watch_hidden(self, cell: _Cell, frame: Frame, gx, gy, r, g, threshold: float, occupied: set[int]) -> None:
        """A hidden spot turns ``unknown`` when its roof band changes for ``hidden_change_seconds``.

        The roof band is where a vehicle standing in the spot would show above the vehicles in
        front: its silhouette less theirs. Its view is kept from when the spot was hidden; a car
        arriving in the spot (or leaving it) changes it for good, a car driving past for a moment.
        The spot cannot be judged from it (a car arriving in the spot behind changes it too), so it
        says 'cannot tell' instead of keeping a state that may be stale.
        """
        import cv2

        c = self.config
        if cell.state == UNKNOWN or cell.zone or cell.silhouette is None:
            return
        sx0, sy0, sx1, sy1, smask = cell.silhouette
        hidden = [mask for k, mask in cell.band_occluders if k in occupied]
        band = smask & ~np.logical_or.reduce(hidden) if hidden else smask
        # off its edges: the silhouettes are a little larger than most cars, and what shows at their margins is
        # the spot behind, where another car may come and go
        band = cv2.erode(band.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=0).astype(bool)
        if int(band.sum()) < c.min_spot_pixels // 2:
            return  # nothing of a vehicle in it would show: it keeps its state
        now = (gx[sy0:sy1, sx0:sx1], gy[sy0:sy1, sx0:sx1], r[sy0:sy1, sx0:sx1], g[sy0:sy1, sx0:sx1])
        if cell.band_view is None:
            cell.band_view, cell.band_doubt = tuple(a.copy() for a in now), 0.0
            return
        bgx, bgy, br, bg_ = cell.band_view
        changed = (((np.abs(now[0] - bgx) + np.abs(now[1] - bgy)) > threshold)
                   | ((np.abs(now[2] - br) + np.abs(now[3] - bg_)) > c.chroma_threshold))
        if float(changed[band].mean()) > BAND_CHANGED_SHARE:
            cell.band_doubt += self._dt
        else:
            cell.band_doubt = max(0.0, cell.band_doubt - self._dt)
            keep = band & ~changed  # follow slow light changes where nothing changed
            for view, value in zip(cell.band_view, now):
                view[keep] += self._alpha * (value[keep] - view[keep])
        if cell.band_doubt >= c.hidden_change_seconds:
            self._flip(cell, UNKNOWN, frame)
            cell.band_view, cell.band_doubt, cell.looked = None, 0.0, None  # unseen since: it hides as if occupied

    def _learn(self, cell: _Cell, gx, gy, r, g) -> None:
        if cell.bg is None:
            cell.bg = (gx.copy(), gy.copy(), r.copy(), g.copy())
            return
        a = self._alpha
        for model, now in zip(cell.bg, (gx, gy, r, g)):
            model += a * (now - model)

    def _flip(self, cell: _Cell, state: str, frame: Frame) -> None:
        cell.state, cell.doubt = state, 0.0
        cell.since_t, cell.since_frame = frame.t, frame.index
        if cell.zone:
            return
        change = OccupancyChange(spot_id=cell.place.id, code=cell.place.code, occupancy=state, t=round(frame.t, 3),
                                 frame=frame.index)
        self.changes.append(change)
        if self.on_occupancy is not None:
            self.on_occupancy(change)

    # -- illegal parking ------------------------------------------------------------

    def _zones(self, frame: Frame) -> list[Lifecycle]:
        steps: list[Lifecycle] = []
        for zone in self.zones:
            occupied = [self.cells[k] for k in zone.cells if self.cells[k].state == OCCUPIED]
            if not occupied:
                if zone.occupied_since is not None and not zone.reported:
                    self.rejections["left before the limit"] = self.rejections.get("left before the limit", 0) + 1
                zone.occupied_since, zone.reported = None, False
                continue
            if zone.occupied_since is None:
                first = min(occupied, key=lambda c: c.since_t)
                zone.occupied_since = (first.since_t, first.since_frame)
            since_t, since_frame = zone.occupied_since
            if zone.reported or frame.t - since_t < zone.limit:
                continue
            zone.reported = True
            event_id = self._next_event
            self._next_event += 1
            event = self._event(zone, occupied, since_t, since_frame, frame)
            steps += [Lifecycle("start", event_id, frame.index, frame.index),
                      Lifecycle("end", event_id, frame.index, frame.index, event=event)]
        return steps

    def _event(self, zone: _Zone, occupied: list[_Cell], since_t: float, since_frame: int,
               frame: Frame) -> VisionEvent:
        from shapely.ops import unary_union

        where = unary_union([c.footprint for c in occupied]).centroid
        lon, lat = _transformer(METRIC_CRS, "EPSG:4326").transform(where.x, where.y)
        xs = [c.box_full[0] for c in occupied] + [c.box_full[0] + c.box_full[2] for c in occupied]
        ys = [c.box_full[1] for c in occupied] + [c.box_full[1] + c.box_full[3] for c in occupied]
        box = (int(min(xs)), int(min(ys)), int(max(xs) - min(xs)), int(max(ys) - min(ys)))
        base = (box[0] + box[2] / 2, float(box[1] + box[3]))
        # evidence strength: how clearly the cells differ from empty asphalt
        score = float(np.mean([c.score for c in occupied]))
        confidence = min(1.0, 0.5 + 0.5 * min(1.0, score / max(2 * self.config.occupied_share, 1e-6)))
        t_start = max(0.0, since_t - self.config.zone_occupy_seconds)  # the vehicle stood there since about then
        return VisionEvent(
            type=EVENT_TYPE, t_start=round(t_start, 3), t_end=round(frame.t, 3), confidence=round(confidence, 3),
            frames=(since_frame, frame.index), trajectory=((round(base[0], 1), round(base[1], 1)),),
            origin_image=(round(base[0], 1), round(base[1], 1)), floor=None, column=None,
            location={"lon": round(lon, 7), "lat": round(lat, 7)}, evidence=None, box=box,
            zone={"code": zone.place.code, "reason": zone.place.reason or "other", "name": zone.place.name,
                  "limit_s": zone.limit, "stood_s": round(frame.t - t_start, 1)},
        )


# -- layout from the layers ------------------------------------------------------------


def parking_layout_for(camera, *, radius_m: float = LAYOUT_RADIUS_M) -> ParkingLayout:
    """The spots and zones near a camera (from the layers), with its position and mounting height."""
    from gis.spatial.selectors import parking_places_near

    rows = parking_places_near(lon=camera.geom.x, lat=camera.geom.y, radius_m=radius_m)
    spots = tuple(Place(code=r["code"], ring=tuple(r["ring"]), id=r["id"]) for r in rows["spots"])
    zones = tuple(Place(code=r["code"], ring=tuple(r["ring"]), id=r["id"], reason=r["reason"], name=r["name"])
                  for r in rows["zones"])
    return ParkingLayout(spots=spots, zones=zones, camera_lonlat=(camera.geom.x, camera.geom.y),
                         camera_height_m=camera.height_m)


def _vehicle_box(footprint, length: float, width: float) -> np.ndarray:
    """Corners (4×2) of a vehicle-sized rectangle centred in the cell, along its longer side."""
    rect = np.asarray(footprint.minimum_rotated_rectangle.exterior.coords)[:4]
    a, b = rect[1] - rect[0], rect[2] - rect[1]
    if np.hypot(*a) < np.hypot(*b):
        a, b = b, a
    la, lb = float(np.hypot(*a)), float(np.hypot(*b))
    u, v = a / max(la, 1e-9), b / max(lb, 1e-9)
    hl, hw = min(length, la) / 2, min(width, lb) / 2
    c = rect.mean(axis=0)
    return np.array([c - u * hl - v * hw, c + u * hl - v * hw, c + u * hl + v * hw, c - u * hl + v * hw])


def _zone_cells(polygon, cell_m: float) -> list:
    """The zone cut across its longer side into pieces about ``cell_m`` long."""
    from shapely.affinity import rotate
    from shapely.geometry import box

    rect = polygon.minimum_rotated_rectangle
    coords = np.asarray(rect.exterior.coords)[:4]
    sides = [coords[(k + 1) % 4] - coords[k] for k in range(2)]
    long_side = max(sides, key=lambda v: float(np.hypot(*v)))
    length = float(np.hypot(*long_side))
    n = max(1, int(round(length / cell_m)))
    if n == 1:
        return [polygon]
    angle = math.degrees(math.atan2(long_side[1], long_side[0]))
    centre = rect.centroid
    upright = rotate(polygon, -angle, origin=centre)  # the long side along x
    bx0, by0, bx1, by1 = upright.bounds
    step = (bx1 - bx0) / n
    cells = []
    for k in range(n):
        piece = upright.intersection(box(bx0 + k * step, by0 - 1, bx0 + (k + 1) * step, by1 + 1))
        if not piece.is_empty and piece.area > 0.5:
            piece = rotate(piece, angle, origin=centre)
            cells.append(piece if piece.geom_type == "Polygon" else max(piece.geoms, key=lambda p: p.area))
    return cells


def _covered(rect: tuple[int, int, int, int], region: np.ndarray, silhouette) -> np.ndarray | None:
    """The part of ``region`` (a mask over ``rect``: x0, y0, x1, y1) that a vehicle's ``silhouette``
    (x0, y0, x1, y1, mask) would cover; None when it covers none of it."""
    x0, y0, x1, y1 = rect
    sx0, sy0, sx1, sy1, smask = silhouette
    ix0, iy0, ix1, iy1 = max(x0, sx0), max(y0, sy0), min(x1, sx1), min(y1, sy1)
    if ix0 >= ix1 or iy0 >= iy1:
        return None
    hide = np.zeros_like(region)
    hide[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = smask[iy0 - sy0:iy1 - sy0, ix0 - sx0:ix1 - sx0]
    hide &= region
    return hide if hide.any() else None
