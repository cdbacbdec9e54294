"""``analyze_video``: a video file or stream through the chosen detectors (falling objects, fire and smoke, people,
parking), with evidence (built on :mod:`vision.streaming`, the core ``onemap vision run`` shares)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.vocabulary import FALLING_OBJECT_CATEGORY, FIRE_SMOKE_CATEGORY, PARKING_CATEGORY
from vision.people import EVENT_TYPE as PERSON
from vision.calibration import Calibration
from vision.config import DetectorConfig, FireConfig, ParkingConfig
from vision.events import VisionEvent
from vision.sources import VideoSourceError, VideoTruncatedError, open_source

__all__ = ["AnalysisResult", "VisionEvent", "analyze_video"]

DETECTORS = (FALLING_OBJECT_CATEGORY, FIRE_SMOKE_CATEGORY, PERSON, PARKING_CATEGORY)  # event types a camera can be analysed for


@dataclass
class AnalysisResult:
    events: list[VisionEvent]
    frames_read: int
    frames_dropped: int
    fps: float  # the video's frame rate
    seconds: float  # wall-clock seconds the analysis took
    rejections: dict[str, int] = field(default_factory=dict)  # tracks turned down, by stage

    @property
    def processing_fps(self) -> float:
        """Frames analysed per wall-clock second."""
        return self.frames_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def video_seconds(self) -> float:
        return self.frames_read / self.fps if self.fps else 0.0


def analyze_video(source, *, calibration: Calibration | dict | None = None, camera_code: str | None = None,
                  evidence_dir: Path | None = None, config: DetectorConfig | dict | None = None,
                  progress: bool = False, max_frames: int | None = None,
                  detect: tuple[str, ...] | str = (FALLING_OBJECT_CATEGORY,),
                  fire_config: FireConfig | dict | None = None, people_config=None, parking_layout=None,
                  parking_config: ParkingConfig | dict | None = None, on_occupancy=None) -> AnalysisResult:
    """Run the ``detect`` detectors over a video; raises VideoSourceError (nothing usable) or VideoTruncatedError."""
    from vision.streaming import StreamingCore, detector_stages

    import cv2

    cv2.setNumThreads(1)  # one camera, one core: the throughput goals are per core
    detect = (detect,) if isinstance(detect, str) else tuple(detect)
    unknown = [d for d in detect if d not in DETECTORS]
    if unknown or not detect:
        raise ValueError(f"unknown detector {unknown or detect!r}; choose from {', '.join(DETECTORS)}")
    config = config if isinstance(config, DetectorConfig) else DetectorConfig.from_dict(config)
    if isinstance(calibration, dict):
        calibration = Calibration.from_dict(calibration)
    src = open_source(source)
    stages = detector_stages(detect, calibration=calibration, config=config, fire_config=fire_config, fps=src.fps,
                             people_config=people_config, parking_layout=parking_layout,
                             parking_config=parking_config, on_occupancy=on_occupancy)
    started = time.perf_counter()
    events: list[VisionEvent] = []
    bar = _progress_bar(src.declared_frames or None) if progress else None
    core = StreamingCore(source=src, stages=stages, config=config, evidence_dir=evidence_dir,
                         camera_code=camera_code, on_sealed=lambda event, _: events.append(event),
                         on_frame=(lambda frame: bar.update(1)) if bar is not None else None)
    try:
        core.run(max_frames=max_frames)
    finally:
        if bar is not None:
            bar.close()
    events.sort(key=lambda e: (e.t_start, e.frames))
    result = AnalysisResult(
        events=events, frames_read=src.frames_read, frames_dropped=src.frames_dropped, fps=src.fps,
        seconds=time.perf_counter() - started, rejections=dict(core.rejections),
    )
    problem = src.truncation(max_frames=max_frames)
    if problem is not None:
        if src.frames_read == 0:
            raise VideoSourceError(problem)
        raise VideoTruncatedError(problem, result)
    return result


def _progress_bar(total: int | None):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", file=sys.stderr, leave=False, dynamic_ncols=True)
