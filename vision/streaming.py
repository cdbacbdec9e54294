"""The streaming core: frames from a source through pluggable detector stages, with evidence and event hooks.

``onemap vision analyze`` (a file, events collected at the end) and ``onemap vision run``
(a live camera, each incident written the moment its event ends) both run this loop.
A detector stage is anything with ``process(frame) -> [Lifecycle]`` and
``finish() -> [Lifecycle]``, built for a frame size by a factory: falling objects
(:func:`falling_stage`), open fire and smoke (:func:`fire_stage`), people passing
(:func:`people_stage`), and parking occupancy with illegal parking (:func:`parking_stage`). A stage
whose ``keeps_evidence`` is false (people) gets no clip, keyframe or record: its events go straight
to ``on_sealed`` after ``on_ended``.

Two hooks see each accepted event: ``on_ended(event, latency)`` when the detector ends it
(before its evidence clip has its post-roll) and ``on_sealed(event, handle)`` when its
clip, keyframe and chained record are written (``handle`` is what ``on_ended`` returned).
After a live stream's gap (a new ``segment``) every stage is finished and built again, so
no track runs across the gap and the background is learnt afresh.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Protocol

from core.vocabulary import FIRE_SMOKE_CATEGORY, PARKING_CATEGORY
from vision.calibration import Calibration, CalibrationError
from vision.config import DetectorConfig
from vision.events import Lifecycle, VisionEvent
from vision.sources import Frame


class DetectorStage(Protocol):
    """A detector: frames in, lifecycle steps out."""

    rejections: dict[str, int]

    def process(self, frame: Frame) -> list[Lifecycle]: ...

    def finish(self) -> list[Lifecycle]: ...


StageFactory = Callable[[int, int], DetectorStage]  # (width, height) of the stream -> a fresh stage
OnEnded = Callable[[VisionEvent, "EventTiming"], object]


@dataclass(frozen=True)
class EventTiming:
    """When a live event happened by the wall clock, and how long its detection took."""

    started_at: datetime | None  # arrival of its first frame (None for a file)
    latency_s: float | None  # from the arrival of its last frame to now (None for a file)
OnSealed = Callable[[VisionEvent, object], None]


def falling_stage(*, calibration: Calibration | dict | None, config: DetectorConfig,
                  classifier=None) -> StageFactory:
    """A factory of falling-object detectors (高空抛物) for the stream's frame size."""
    from vision.falling import FallingObjectDetector
    from vision.training import load_or_train

    if isinstance(calibration, dict):
        calibration = Calibration.from_dict(calibration) if calibration else None
    classifier = classifier if classifier is not None else load_or_train()

    def build(width: int, height: int) -> DetectorStage:
        return FallingObjectDetector(calibration=fit_calibration(calibration, width, height), width=width,
                                     height=height, config=config, classifier=classifier)

    return build


def fire_stage(*, calibration: Calibration | dict | None, config, fps: float) -> StageFactory:
    """A factory of open-fire and dense-smoke detectors (烟火告警) for the stream's frame size."""
    from vision.config import FireConfig
    from vision.fire import FireDetector

    if isinstance(calibration, dict):
        calibration = Calibration.from_dict(calibration) if calibration else None
    config = config if isinstance(config, FireConfig) else FireConfig.from_dict(config)

    def build(width: int, height: int) -> DetectorStage:
        return FireDetector(calibration=fit_calibration(calibration, width, height), width=width, height=height,
                            config=config, fps=fps)

    return build


def people_stage(*, config=None, fps: float) -> StageFactory:
    """A factory of people detectors (peephole and courtyard cameras): passes, never evidence of a person."""
    from vision.config import PeopleConfig
    from vision.people import PeopleDetector

    config = config if isinstance(config, PeopleConfig) else PeopleConfig.from_dict(config)

    def build(width: int, height: int) -> DetectorStage:
        return PeopleDetector(width=width, height=height, config=config, fps=fps)

    return build


def parking_stage(*, calibration: Calibration | dict | None, layout, config=None, fps: float,
                  on_occupancy=None) -> StageFactory:
    """A factory of spot-occupancy and illegal-parking detectors (违章停车) for the stream's frame size.

    Raises :class:`vision.parking.ParkingSetupError` at once when the camera has no ground calibration.
    """
    from vision.config import ParkingConfig
    from vision.parking import ParkingDetector, ParkingSetupError

    if isinstance(calibration, dict):
        calibration = Calibration.from_dict(calibration) if calibration else None
    if calibration is None or calibration.ground is None:
        raise ParkingSetupError(
            'parking needs the camera\'s ground calibration (a "ground" block: ≥4 image points ↔ lon/lat) to put '
            "its spots and zones in the image; this camera has none")
    config = config if isinstance(config, ParkingConfig) else ParkingConfig.from_dict(config)

    def build(width: int, height: int) -> DetectorStage:
        return ParkingDetector(calibration=fit_calibration(calibration, width, height), width=width, height=height,
                               layout=layout, config=config, fps=fps, on_occupancy=on_occupancy)

    return build


def detect_for(camera) -> tuple[str, ...]:
    """What a camera looks for by its purpose: a façade, falling objects; a courtyard, fire and smoke and people
    passing; a car park, fire and smoke and illegal parking (with its spots' occupancy); a peephole, people
    passing the door."""
    purpose = getattr(camera, "purpose", None)
    if purpose == "facade":
        return ("falling_object",)
    if purpose == "courtyard":
        return ("fire_smoke", "person")
    if purpose == "parking":
        return (FIRE_SMOKE_CATEGORY, PARKING_CATEGORY)
    if purpose == "peephole":
        return ("person",)
    return ()


def detector_stages(detect: tuple[str, ...], *, calibration, config: DetectorConfig, fire_config=None,
                    fps: float, classifier=None, people_config=None, parking_layout=None, parking_config=None,
                    on_occupancy=None) -> list[StageFactory]:
    """The stages for the event types asked for, falling objects first (the evidence keyframe's calibration).

    Illegal parking needs ``parking_layout`` (:class:`vision.parking.ParkingLayout`: the spots and zones).
    """
    stages = []
    if "falling_object" in detect:
        stages.append(falling_stage(calibration=calibration, config=config, classifier=classifier))
    if "fire_smoke" in detect:
        stages.append(fire_stage(calibration=calibration, config=fire_config, fps=fps))
    if "person" in detect:
        stages.append(people_stage(config=people_config, fps=fps))
    if "illegal_parking" in detect:
        if parking_layout is None:
            from vision.parking import ParkingSetupError

            raise ParkingSetupError("illegal-parking detection needs the spots and zones a camera watches: "
                                    "give a camera from the database (--camera CODE)")
        stages.append(parking_stage(calibration=calibration, layout=parking_layout, config=parking_config, fps=fps,
                                    on_occupancy=on_occupancy))
    return stages


def fit_calibration(calibration: Calibration | None, width: int, height: int) -> Calibration | None:
    """The calibration scaled to the frame size; a CalibrationError when it cannot be."""
    if calibration is None:
        return None
    try:
        return calibration.scaled_to(width, height)
    except CalibrationError:
        raise
    except ValueError as exc:
        raise CalibrationError(str(exc)) from None


@dataclass
class StreamingCore:
    """Runs a source through the stages; evidence per camera when ``evidence_dir`` is given."""

    source: object  # a VideoFileSource or StreamSource
    stages: list[StageFactory]
    config: DetectorConfig
    evidence_dir: Path | None = None
    camera_code: str | None = None
    on_ended: OnEnded | None = None
    on_sealed: OnSealed | None = None
    on_frame: Callable[[Frame], None] | None = None
    frames_out: int = 0  # frames the stages have seen
    segments: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    _live: list = field(default_factory=list, init=False)  # the current segment's stages
    _recorder: object = field(default=None, init=False)
    _segment: int | None = field(default=None, init=False)
    _ids: dict = field(default_factory=dict, init=False)  # (stage, event id) -> evidence id, unique per core
    _pending: dict = field(default_factory=dict, init=False)  # event key -> on_ended's handle
    _arrivals: deque = field(default_factory=lambda: deque(maxlen=3000), init=False)  # (index, monotonic)

    def run(self, *, max_frames: int | None = None) -> None:
        """Read the source to its end (a live one: until it is stopped or given up)."""
        for frame in self.source.frames(max_frames=max_frames):
            if frame.segment != self._segment:
                self._close_segment()
                self._segment = frame.segment
            if not self._live:
                self._open_segment(frame)
            if frame.arrived is not None:
                self._arrivals.append((frame.index, frame.arrived))
            if self._recorder is not None:
                self._sealed_all(self._recorder.push(frame.index, frame.image))
            for k, stage in enumerate(self._live):
                self._handle(k, stage.process(frame))
            self.frames_out += 1
            if self.on_frame is not None:
                self.on_frame(frame)
        self._close_segment()

    # -- segments ------------------------------------------------------------------

    def _open_segment(self, frame: Frame) -> None:
        from vision.evidence import EvidenceRecorder

        height, width = frame.image.shape[:2]
        self._live = [make(width, height) for make in self.stages]
        self.segments += 1
        if self.evidence_dir is not None and any(getattr(s, "keeps_evidence", True) for s in self._live):
            first = self._live[0] if self._live else None
            calibration = None
            if first is not None and not getattr(first, "nominal", True):
                calibration = getattr(first, "calibration", None)  # marks the floor on keyframes
            self._recorder = EvidenceRecorder(root=Path(self.evidence_dir), camera_code=self.camera_code,
                                              fps=self.source.fps, pre_seconds=self.config.pre_seconds,
                                              post_seconds=self.config.post_seconds, calibration=calibration)

    def _close_segment(self) -> None:
        for k, stage in enumerate(self._live):
            self._handle(k, stage.finish())
            for reason, n in stage.rejections.items():
                self.rejections[reason] = self.rejections.get(reason, 0) + n
        if self._recorder is not None:
            self._sealed_all(self._recorder.flush())
        self._live, self._recorder = [], None

    # -- events --------------------------------------------------------------------

    def _handle(self, k: int, steps: list[Lifecycle]) -> None:
        # a stage may keep no evidence at all (people: no clip, no keyframe of a person, ever)
        recorder = self._recorder if getattr(self._live[k], "keeps_evidence", True) else None
        for step in steps:
            if step.kind not in ("start", "end"):
                continue
            key = (self.segments, k, step.event_id)
            evidence_id = self._ids.setdefault(key, len(self._ids) + 1)
            if step.kind == "start":
                if recorder is not None:
                    recorder.start(evidence_id, step.first_frame)
                continue
            self._ids.pop(key, None)
            if step.event is not None:
                self._ended(step.event)
            if recorder is not None:
                self._sealed_all(recorder.end(evidence_id, step.first_frame, step.last_frame, step.event))
            elif step.event is not None:
                self._sealed(step.event)

    def _ended(self, event: VisionEvent) -> None:
        handle = self.on_ended(event, self._timing(event)) if self.on_ended is not None else None
        self._pending[_key(event)] = handle

    def _timing(self, event: VisionEvent) -> EventTiming:
        arrived = dict(self._arrivals)
        first, last = arrived.get(event.frames[0]), arrived.get(event.frames[1])
        now = time.monotonic()
        started_at = (datetime.now(timezone.utc) - timedelta(seconds=now - first)) if first is not None else None
        return EventTiming(started_at=started_at, latency_s=now - last if last is not None else None)

    def _sealed_all(self, events: list[VisionEvent]) -> None:
        for event in events:
            self._sealed(event)

    def _sealed(self, event: VisionEvent) -> None:
        handle = self._pending.pop(_key(event), None)
        if self.on_sealed is not None:
            self.on_sealed(event, handle)


def _key(event: VisionEvent) -> tuple:
    return (event.type, tuple(event.frames), round(event.t_start, 6))
