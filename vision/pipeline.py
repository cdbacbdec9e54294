"""``analyze_video``: a video file or stream through the chosen detectors (falling objects, fire and smoke), with evidence."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.vocabulary import FALLING_OBJECT_CATEGORY, FIRE_SMOKE_CATEGORY
from vision.calibration import Calibration, CalibrationError
from vision.config import DetectorConfig, FireConfig
from vision.events import VisionEvent
from vision.sources import VideoSourceError, VideoTruncatedError, open_source

__all__ = ["AnalysisResult", "DETECTORS", "VisionEvent", "analyze_video"]

DETECTORS = (FALLING_OBJECT_CATEGORY, FIRE_SMOKE_CATEGORY)  # event types a camera can be analysed for


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
                  detect: tuple[str, ...] | str = ("falling_object",),
                  fire_config: FireConfig | dict | None = None) -> AnalysisResult:
    """Run the ``detect`` detectors over a video; raises VideoSourceError (nothing usable) or VideoTruncatedError."""
    from vision.evidence import EvidenceRecorder

    import cv2

    cv2.setNumThreads(1)  # one camera, one core: the throughput goals are per core
    detect = (detect,) if isinstance(detect, str) else tuple(detect)
    unknown = [d for d in detect if d not in DETECTORS]
    if unknown or not detect:
        raise ValueError(f"unknown detector {unknown or detect!r}; choose from {', '.join(DETECTORS)}")
    config = config if isinstance(config, DetectorConfig) else DetectorConfig.from_dict(config)
    fire_config = fire_config if isinstance(fire_config, FireConfig) else FireConfig.from_dict(fire_config)
    if isinstance(calibration, dict):
        calibration = Calibration.from_dict(calibration)
    classifier = None
    if "falling_object" in detect:
        from vision.training import load_or_train

        classifier = load_or_train()
    src = open_source(source)
    started = time.perf_counter()
    detector = recorder = bar = None
    detectors: dict[str, object] = {}
    events: list[VisionEvent] = []

    def handle(name: str, steps) -> None:
        for step in steps:
            key = f"{name}-{step.event_id}"  # each detector numbers its own events
            if recorder is None:
                if step.kind == "end" and step.event is not None:
                    events.append(step.event)
            elif step.kind == "start":
                recorder.start(key, step.first_frame)
            elif step.kind == "end":
                events.extend(recorder.end(key, step.first_frame, step.last_frame, step.event))

    try:
        for frame in src.frames(max_frames=max_frames):
            if not detectors:
                height, width = frame.image.shape[:2]
                calibration = _fit_calibration(calibration, width, height)
                detectors = _detectors(detect, calibration, width, height, config, fire_config, classifier, src.fps)
                detector = detectors.get("falling_object")
                if evidence_dir is not None:
                    pre = max(config.pre_seconds if detector else 0, fire_config.pre_seconds if "fire_smoke" in
                              detectors else 0)
                    post = max(config.post_seconds if detector else 0, fire_config.post_seconds if "fire_smoke" in
                               detectors else 0)
                    facade = detector.calibration if detector is not None and not detector.nominal else calibration
                    recorder = EvidenceRecorder(root=Path(evidence_dir), camera_code=camera_code, fps=src.fps,
                                                pre_seconds=pre, post_seconds=post, calibration=facade)
                if progress:
                    bar = _progress_bar(src.declared_frames or None)
            if recorder is not None:
                events.extend(recorder.push(frame.index, frame.image))
            for name, stage in detectors.items():
                handle(name, stage.process(frame))
            if bar is not None:
                bar.update(1)
        for name, stage in detectors.items():
            handle(name, stage.finish())
        if recorder is not None:
            events.extend(recorder.flush())
    finally:
        if bar is not None:
            bar.close()
    events.sort(key=lambda e: (e.t_start, e.frames))
    result = AnalysisResult(
        events=events, frames_read=src.frames_read, frames_dropped=src.frames_dropped, fps=src.fps,
        seconds=time.perf_counter() - started,
        rejections={k: v for stage in detectors.values() for k, v in stage.rejections.items()},
    )
    problem = src.truncation(max_frames=max_frames)
    if problem is not None:
        if src.frames_read == 0:
            raise VideoSourceError(problem)
        raise VideoTruncatedError(problem, result)
    return result


def _detectors(detect, calibration, width, height, config, fire_config, classifier, fps) -> dict:
    """The detector stages asked for, in a fixed order; each has ``process(frame)``, ``finish()`` and ``rejections``."""
    stages = {}
    if "falling_object" in detect:
        from vision.falling import FallingObjectDetector

        stages["falling_object"] = FallingObjectDetector(calibration=calibration, width=width, height=height,
                                                         config=config, classifier=classifier)
    if "fire_smoke" in detect:
        from vision.fire import FireDetector

        stages["fire_smoke"] = FireDetector(calibration=calibration, width=width, height=height, config=fire_config,
                                            fps=fps)
    return stages


def _fit_calibration(calibration: Calibration | None, width: int, height: int) -> Calibration | None:
    if calibration is None:
        return None
    try:
        return calibration.scaled_to(width, height)
    except CalibrationError:
        raise
    except ValueError as exc:
        raise CalibrationError(str(exc)) from None


def _progress_bar(total: int | None):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", file=sys.stderr, leave=False, dynamic_ncols=True)
