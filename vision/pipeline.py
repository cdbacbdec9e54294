"""``analyze_video``: a video file or stream through the falling-object detector, with evidence."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from vision.calibration import Calibration, CalibrationError
from vision.config import DetectorConfig
from vision.events import VisionEvent
from vision.sources import VideoSourceError, VideoTruncatedError, open_source

__all__ = ["AnalysisResult", "VisionEvent", "analyze_video"]


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
                  progress: bool = False, max_frames: int | None = None) -> AnalysisResult:
    """Detect falling objects in a video; raises VideoSourceError (nothing usable) or VideoTruncatedError."""
    from vision.evidence import EvidenceRecorder
    from vision.falling import FallingObjectDetector
    from vision.training import load_or_train

    import cv2

    cv2.setNumThreads(1)  # one camera, one core: the throughput goals are per core
    config = config if isinstance(config, DetectorConfig) else DetectorConfig.from_dict(config)
    if isinstance(calibration, dict):
        calibration = Calibration.from_dict(calibration)
    classifier = load_or_train()
    src = open_source(source)
    started = time.perf_counter()
    detector = recorder = bar = None
    events: list[VisionEvent] = []

    def handle(steps) -> None:
        for step in steps:
            if recorder is None:
                if step.kind == "end" and step.event is not None:
                    events.append(step.event)
            elif step.kind == "start":
                recorder.start(step.event_id, step.first_frame)
            elif step.kind == "end":
                events.extend(recorder.end(step.event_id, step.first_frame, step.last_frame, step.event))

    try:
        for frame in src.frames(max_frames=max_frames):
            if detector is None:
                height, width = frame.image.shape[:2]
                calibration = _fit_calibration(calibration, width, height)
                detector = FallingObjectDetector(calibration=calibration, width=width, height=height,
                                                 config=config, classifier=classifier)
                if evidence_dir is not None:
                    recorder = EvidenceRecorder(root=Path(evidence_dir), camera_code=camera_code, fps=src.fps,
                                                pre_seconds=config.pre_seconds, post_seconds=config.post_seconds,
                                                calibration=detector.calibration if not detector.nominal else None)
                if progress:
                    bar = _progress_bar(src.declared_frames or None)
            if recorder is not None:
                events.extend(recorder.push(frame.index, frame.image))
            handle(detector.process(frame))
            if bar is not None:
                bar.update(1)
        if detector is not None:
            handle(detector.finish())
        if recorder is not None:
            events.extend(recorder.flush())
    finally:
        if bar is not None:
            bar.close()
    events.sort(key=lambda e: (e.t_start, e.frames))
    result = AnalysisResult(
        events=events, frames_read=src.frames_read, frames_dropped=src.frames_dropped, fps=src.fps,
        seconds=time.perf_counter() - started, rejections=dict(detector.rejections) if detector else {},
    )
    problem = src.truncation(max_frames=max_frames)
    if problem is not None:
        if src.frames_read == 0:
            raise VideoSourceError(problem)
        raise VideoTruncatedError(problem, result)
    return result


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
