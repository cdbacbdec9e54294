"""Validated configuration of the vision pipeline: unknown keys and out-of-range values fail at start-up."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class VisionConfigError(ValueError):
    """A configuration value was refused; the message names the key and the accepted range."""


class _Strict(BaseModel):
    """Frozen, and any key it does not declare is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_dict(cls, data: dict | None):
        """Build from a plain dict, turning pydantic's errors into one readable message."""
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
            )
            raise VisionConfigError(f"{cls.__name__}: {problems}") from None


class DetectorConfig(_Strict):
    """Parameters of the falling-object detector; the defaults suit 720p–1080p façade cameras."""

    diff_threshold: float = Field(
        12.0, ge=2, le=128, title="difference threshold",
        description="Least grey levels a pixel must differ from the background model to count as foreground",
    )
    noise_factor: float = Field(
        5.0, ge=1.0, le=20.0, title="noise factor",
        description="The threshold is at least this many standard deviations of the camera's measured noise",
    )
    colour: bool = Field(
        True, title="colour",
        description="Also compare colour (at half resolution), to see objects as bright as the wall but of another "
                    "colour; costs about a quarter more detector time. Turn off for grey or infrared cameras",
    )
    colour_threshold: float = Field(
        12.0, ge=2, le=255, title="colour threshold",
        description="Least colour difference from the background model for foreground, at half resolution: "
                    "0.59 |ΔCr| + 0.30 |ΔCb| + 0.11 |ΔY| (BT.601 levels)",
    )
    edge_gain: float = Field(
        2.0, ge=0.0, le=4.0, title="edge gain",
        description="Extra threshold per grey level of background gradient, so residual shake on edges is ignored",
    )
    background_alpha: float = Field(
        0.06, gt=0.0, le=0.5, title="background learning rate",
        description="Weight of each new frame in the running-average background",
    )
    min_area_px: int = Field(
        2, ge=1, le=10_000, title="smallest blob", description="Blobs with fewer foreground pixels are noise",
    )
    max_area_px: int = Field(
        4000, ge=4, le=1_000_000, title="largest blob", description="Blobs with more pixels are not thrown objects",
    )
    max_blobs_per_frame: int = Field(
        300, ge=1, le=10_000, title="blob budget",
        description="More blobs than this in one frame means a global change (light, shake): the frame is relearned",
    )
    max_foreground_fraction: float = Field(
        0.08, gt=0.0, le=1.0, title="foreground budget",
        description="A larger foreground share of the façade means a global change: the background is relearned",
    )
    stabilise: bool = Field(True, title="stabilise", description="Compensate camera shake by phase correlation")
    stabilise_width: int = Field(
        320, ge=64, le=1920, title="stabilisation width",
        description="Width in pixels the frame is shrunk to for shake estimation",
    )
    max_gap_frames: int = Field(
        5, ge=0, le=25, title="gap tolerance", description="Frames a track may miss before it ends",
    )
    min_track_frames: int = Field(
        5, ge=5, le=500, title="shortest track", description="Frames a track needs before the gravity gate looks at it",
    )
    min_descent_m: float = Field(
        1.0, ge=0.1, le=100.0, title="shortest fall", description="Metres a track must descend on the façade",
    )
    gravity_min: float = Field(
        0.25, ge=0.0, le=2.0, title="lowest acceleration",
        description="Smallest downward acceleration accepted, as a fraction of g (drag, perspective)",
    )
    gravity_max: float = Field(
        1.7, ge=0.5, le=5.0, title="highest acceleration",
        description="Largest downward acceleration accepted, as a fraction of g (perspective of outward throws)",
    )
    max_lateral_speed: float = Field(
        4.0, gt=0.0, le=50.0, title="fastest sideways motion",
        description="Largest speed (m/s) along the façade a falling track may have: a thrown object is pushed "
                    "out from the wall, not hurled along it",
    )
    max_fit_residual_m: float = Field(
        0.25, gt=0.0, le=10.0, title="fit residual",
        description="Largest RMS residual (metres) of the ballistic fit before a track counts as erratic",
    )
    min_confidence: float = Field(
        0.5, ge=0.0, le=1.0, title="classifier threshold",
        description="Probability of 'falling object' the classifier must give for an event",
    )
    pre_seconds: float = Field(
        2.5, ge=2.0, le=30.0, title="evidence before", description="Seconds of video kept before an event",
    )
    post_seconds: float = Field(
        2.5, ge=2.0, le=30.0, title="evidence after", description="Seconds of video kept after an event",
    )


class CameraConfig(_Strict):
    """One camera the pipeline reads: where from, and how it is calibrated."""

    code: str = Field(..., min_length=1, max_length=40, title="camera code", description="The camera's code in the database")
    source: str = Field(..., min_length=1, title="source", description="Video file path, or rtsp:// / http(s):// stream URL")
    calibration: dict = Field(default_factory=dict, title="calibration", description="Calibration JSON (see DESIGN.md)")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, title="detector", description="Detector parameters")
    queue_size: int = Field(
        50, ge=1, le=10_000, title="frame queue",
        description="Frames a live stream may buffer; frames beyond it are dropped and counted",
    )
    reconnect_max_seconds: float = Field(
        30.0, ge=0.5, le=3600.0, title="reconnect backoff cap",
        description="Longest wait between reconnection attempts of a dropped stream",
    )


class SmokeConfig(_Strict):
    """Parameters of the fire detector's dense-smoke stage; the defaults were set on rendered clips (seeds < 100)."""

    enabled: bool = Field(True, title="smoke", description="Look for dense smoke as well as for flame")
    work_width: int = Field(
        160, ge=64, le=960, title="smoke working width", description="The fire working image is shrunk to this first",
    )
    max_rate: float = Field(
        12.5, ge=1.0, le=240.0, title="smoke frame rate",
        description="Frames per second the smoke stage judges at most (every n-th frame of a faster camera)",
    )
    background_seconds: float = Field(
        10.0, ge=1.0, le=600.0, title="background time constant",
        description="Seconds over which the background follows the scene (ten times longer under foreground)",
    )
    warmup_seconds: float = Field(
        1.0, ge=0.2, le=60.0, title="warm-up", description="Seconds of video learnt as background before judging",
    )
    min_difference: float = Field(
        10.0, ge=2.0, le=128.0, title="difference",
        description="Least grey levels a pixel must differ from the lighting-fitted background to be foreground",
    )
    max_saturation: int = Field(
        110, ge=0, le=255, title="smoke saturation", description="Most HSV saturation of a smoke pixel (grey to white)",
    )
    max_saturation_gain: int = Field(
        15, ge=0, le=255, title="saturation gain",
        description="Most a smoke pixel's saturation may exceed the background's (smoke does not add colour)",
    )
    min_area_fraction: float = Field(
        0.004, gt=0.0, le=0.5, title="smallest smoke region", description="Least area, as a share of the frame",
    )
    max_area_fraction: float = Field(
        0.6, gt=0.0, le=1.0, title="largest smoke region",
        description="Most area, as a share of the frame (beyond it: a lighting change the fit missed)",
    )
    window_seconds: float = Field(
        1.0, ge=0.2, le=10.0, title="smoke window", description="Seconds over which rise and travel are measured",
    )
    max_contrast: float = Field(
        0.85, ge=0.0, le=5.0, title="veil",
        description="Most local contrast of a region relative to the background's (smoke veils what is behind it)",
    )
    min_turbulence: float = Field(
        1.0, ge=0.0, le=255.0, title="turbulence",
        description="Least mean absolute change inside a region over a fifth of a second, grey levels",
    )
    min_rise: float = Field(
        0.003, ge=-1.0, le=1.0, title="rise",
        description="Least upward speed of a region's inner motion, in frame heights per second",
    )
    max_sideways: float = Field(
        1.5, ge=0.0, le=100.0, title="sideways",
        description="Most sideways speed of a region's inner motion, in multiples of its upward speed "
                    "(a car or a lorry slides across; smoke rises, the wind only bends it)",
    )
    max_travel: float = Field(
        0.5, ge=0.0, le=10.0, title="travel",
        description="Most centroid travel over the window, in region sizes (a car or a walker crosses the frame)",
    )
    confirm_seconds: float = Field(
        3.0, ge=0.0, le=60.0, title="smoke confirmation",
        description="Seconds a smoke region must keep qualifying (in most frames) before it counts",
    )


class FireConfig(_Strict):
    """Parameters of the fire and smoke detector (烟火告警); the defaults were tuned on the first half of house6."""

    work_width: int = Field(
        320, ge=96, le=1920, title="working width", description="Frames wider than this are shrunk to it first",
    )
    min_saturation: int = Field(
        110, ge=0, le=255, title="flame saturation", description="Least HSV saturation of a flame-coloured pixel",
    )
    min_value: int = Field(
        120, ge=0, le=255, title="flame brightness", description="Least HSV value of a flame-coloured pixel",
    )
    core_value: int = Field(
        235, ge=0, le=255, title="flame core brightness",
        description="Pixels this bright with a warm hue count as flame whatever their saturation (white-hot cores)",
    )
    window_seconds: float = Field(
        1.0, ge=0.3, le=5.0, title="statistics window", description="Seconds of history the flicker statistics use",
    )
    min_area_fraction: float = Field(
        0.0004, gt=0.0, le=0.2, title="smallest region", description="Least area of a fire region, as a share of the frame",
    )
    min_flicker: float = Field(
        0.25, ge=0.0, le=1.0, title="flicker share",
        description="Least share of a region's footprint that comes and goes within the window (flame edges)",
    )
    min_core: float = Field(
        0.08, ge=0.0, le=1.0, title="steady core share",
        description="Least share of a region's footprint present in nearly every frame of the window "
                    "(a blinking lamp has none)",
    )
    min_activity: float = Field(
        4.0, ge=0.0, le=255.0, title="temporal activity",
        description="Least mean absolute frame-to-frame change (grey levels) in the region's footprint",
    )
    min_contrast: float = Field(
        5.0, ge=0.0, le=100.0, title="activity contrast",
        description="The region's activity must be this many times that of a ring around it: a flame moves "
                    "within itself, a coloured thing that passers-by cross moves with its surroundings",
    )
    max_drift: float = Field(
        0.6, ge=0.0, le=10.0, title="largest drift",
        description="Largest centroid travel over the window, in region widths (a walking orange shirt drifts)",
    )
    confirm_seconds: float = Field(
        1.0, ge=0.0, le=10.0, title="confirmation",
        description="Seconds a region must keep qualifying (in most frames) before an event starts",
    )
    end_seconds: float = Field(
        3.0, ge=0.2, le=60.0, title="end gap", description="Seconds without a qualifying region that end an event",
    )
    pre_seconds: float = Field(
        2.5, ge=2.0, le=30.0, title="evidence before", description="Seconds of video kept before an event",
    )
    post_seconds: float = Field(
        2.5, ge=2.0, le=30.0, title="evidence after", description="Seconds of video kept after an event",
    )
    smoke: SmokeConfig = Field(default_factory=SmokeConfig, title="smoke", description="The dense-smoke stage")


class PeopleConfig(_Strict):
    """Parameters of the people detector (peephole and courtyard cameras): motion, person shape, tracking."""

    motion_width: int = Field(
        320, ge=96, le=1920, title="motion width", description="Frames are shrunk to this width to find motion",
    )
    min_motion_fraction: float = Field(
        0.002, gt=0.0, le=0.5, title="smallest motion region",
        description="Least area of a motion region, as a share of the frame",
    )
    light_change_fraction: float = Field(
        0.5, gt=0.0, le=1.0, title="light change",
        description="A frame whose moving share is above this is a change of light: no detection, the "
                    "background is learnt again",
    )
    background_seconds: float = Field(
        30.0, ge=2.0, le=600.0, title="background memory",
        description="Seconds of video the background model remembers (someone standing still this long fades "
                    "into it)",
    )
    min_height_fraction: float = Field(
        0.08, gt=0.0, le=1.0, title="smallest person",
        description="Least height of a person's moving shape, as a share of the frame's height",
    )
    max_height_fraction: float = Field(
        0.95, gt=0.0, le=1.0, title="largest shape",
        description="A moving shape this tall and nearly as wide as the frame is not a person",
    )
    min_aspect: float = Field(
        1.3, ge=0.5, le=10.0, title="upright",
        description="Least height over width of a one-person shape (a pet or a shadow on the floor is wide)",
    )
    person_width: float = Field(
        0.6, ge=0.1, le=2.0, title="person width",
        description="A person's width as a share of their height: a shape n times wider holds n people",
    )
    confirm_hits: int = Field(
        4, ge=1, le=50, title="confirmation",
        description="Person-shaped detections a track needs before it is a person (one is often a false one)",
    )
    confirm_seconds: float = Field(
        0.8, ge=0.0, le=30.0, title="confirmation time",
        description="Seconds from a track's first detection before it can be a person (a part of someone "
                    "seen for a moment is not)",
    )
    end_seconds: float = Field(
        1.5, ge=0.1, le=30.0, title="end gap",
        description="Seconds a person track may go unseen (neither detected nor moving) before its pass ends",
    )
    rejoin_seconds: float = Field(
        6.0, ge=0.0, le=60.0, title="rejoin",
        description="A new track this soon after a pass ended, where it ended, continues that pass",
    )
    min_travel: float = Field(
        0.25, ge=0.0, le=5.0, title="travel",
        description="How far (in its own heights) a track must have moved before it is a person: people come "
                    "into view, a door swinging or a poster does not travel",
    )
    max_still_seconds: float = Field(
        45.0, ge=1.0, le=3600.0, title="longest stand",
        description="A person detected in the same place with nothing moving for longer than this ends there",
    )
class ParkingConfig(_Strict):
    """Parameters of spot occupancy and illegal parking (违章停车); the defaults were tuned on rendered clips."""

    work_width: int = Field(
        640, ge=160, le=1920, title="working width", description="Frames wider than this are shrunk to it first",
    )
    edge_threshold: float = Field(
        0.22, gt=0.0, le=5.0, title="edge threshold",
        description="Least log-brightness gradient (Sobel, both axes summed) of an edge pixel: a ratio, so shadows "
                    "and night lower it no more than they lower the asphalt's own texture",
    )
    chroma_threshold: float = Field(
        0.06, gt=0.0, le=1.0, title="chroma threshold",
        description="Least change of normalised colour (r, g shares) against a zone cell's learnt empty view",
    )
    occupied_share: float = Field(
        0.3, gt=0.0, le=1.0, title="occupied share",
        description="Share of a zone cell's visible pixels that must differ (edges, or change against its learnt "
                    "empty view) for it to start turning occupied (spots: model_occupied_p)",
    )
    free_share: float = Field(
        0.15, ge=0.0, le=1.0, title="free share",
        description="An occupied zone cell starts turning free only below this share (hysteresis: below "
                    "occupied_share; spots: model_free_p)",
    )
    model_occupied_p: float = Field(
        0.8, gt=0.0, lt=1.0, title="spot model: occupied",
        description="A free (or not yet judged) spot starts turning occupied only while the spot model's "
                    "P(vehicle) of its view is above this",
    )
    model_free_p: float = Field(
        0.2, gt=0.0, lt=1.0, title="spot model: free",
        description="An occupied (or not yet judged) spot starts turning free only while the spot model's "
                    "P(vehicle) is below this (hysteresis; in between, a spot not yet judged waits)",
    )
    occupy_seconds: float = Field(
        3.0, ge=0.0, le=600.0, title="dwell to occupy",
        description="Seconds the evidence must say 'occupied' before a free spot turns occupied (a passing car does not)",
    )
    vacate_seconds: float = Field(
        2.0, ge=0.0, le=600.0, title="dwell to vacate",
        description="Seconds the evidence must say 'free' before an occupied spot turns free",
    )
    zone_occupy_seconds: float = Field(
        5.0, ge=0.0, le=600.0, title="dwell in a zone",
        description="Seconds a no-parking zone's cell must look occupied before a vehicle counts as standing in it "
                    "(a car driving in covers it a few seconds before it stops; its limit counts from here)",
    )
    background_seconds: float = Field(
        8.0, gt=0.0, le=3600.0, title="background time constant",
        description="Time constant of the learnt empty view of a free zone cell (follows slow light changes)",
    )
    hidden_change_seconds: float = Field(
        6.0, ge=0.0, le=600.0, title="hidden change",
        description="A hidden spot turns 'unknown' after the part of it a vehicle in it would show above the ones "
                    "in front (its roof band) looked changed this long (a car arrived or left unseen)",
    )
    min_visible_share: float = Field(
        0.15, ge=0.0, le=1.0, title="visible share",
        description="A spot less visible than this (hidden by vehicles in nearer spots) keeps its state (until its "
                    "roof band changes: hidden_change_seconds)",
    )
    min_spot_pixels: int = Field(
        40, ge=4, le=100_000, title="smallest spot", description="Spots smaller than this in the working image are not judged",
    )
    vehicle_height_m: float = Field(
        1.5, ge=1.1, le=4.0, title="vehicle height",
        description="Height of a parked vehicle's cabin (over the middle of its length; the body below it is 1 m), "
                    "for what it hides of the spots behind it",
    )
    vehicle_length_m: float = Field(
        4.6, ge=1.0, le=20.0, title="vehicle length",
        description="Length of a parked vehicle (centred in its cell, no longer than the cell)",
    )
    vehicle_width_m: float = Field(
        1.9, ge=0.5, le=5.0, title="vehicle width", description="Width of a parked vehicle (no wider than the cell)",
    )
    spot_inset_m: float = Field(
        0.3, ge=0.0, le=1.0, title="spot inset", description="Metres trimmed from each side of a spot (its painted lines)",
    )
    zone_cell_m: float = Field(
        5.5, ge=2.0, le=20.0, title="zone cell length",
        description="A no-parking zone is judged in cells of about a vehicle's length along its longer side",
    )
    fire_lane_limit_seconds: float = Field(
        60.0, ge=0.0, le=86_400.0, title="fire lane limit",
        description="Seconds a vehicle may stand in a fire lane before it is illegal parking",
    )
    hydrant_limit_seconds: float = Field(60.0, ge=0.0, le=86_400.0, title="hydrant limit",
                                         description="Seconds a vehicle may stand at a hydrant")
    entrance_limit_seconds: float = Field(120.0, ge=0.0, le=86_400.0, title="entrance limit",
                                          description="Seconds a vehicle may stand in an entrance")
    other_limit_seconds: float = Field(300.0, ge=0.0, le=86_400.0, title="other limit",
                                       description="Seconds a vehicle may stand in another no-parking zone")
    pre_seconds: float = Field(
        2.5, ge=2.0, le=30.0, title="evidence before", description="Seconds of video kept before an event",
    )
    post_seconds: float = Field(
        2.5, ge=2.0, le=30.0, title="evidence after", description="Seconds of video kept after an event",
    )

    @model_validator(mode="after")
    def _model_hysteresis(self) -> "ParkingConfig":
        if self.model_free_p >= self.model_occupied_p:
            raise ValueError(f"model_free_p ({self.model_free_p}) must be below model_occupied_p "
                             f"({self.model_occupied_p}): the band between them is the hysteresis")
        return self

    def limit_for(self, reason: str) -> float:
        """The seconds a vehicle may stand in a zone of this reason."""
        return {"fire_lane": self.fire_lane_limit_seconds, "hydrant": self.hydrant_limit_seconds,
                "entrance": self.entrance_limit_seconds}.get(reason, self.other_limit_seconds)
