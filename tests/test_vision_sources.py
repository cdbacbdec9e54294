"""vision.sources and vision.config: bounded stream queues that drop and count, reconnection, strict config."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vision.config import CameraConfig, DetectorConfig, VisionConfigError
from vision.sources import Frame, StreamSource, VideoFileSource, VideoSourceError, open_source


def test_a_full_stream_queue_drops_the_oldest_and_counts():
    source = StreamSource("rtsp://127.0.0.1:9/none", queue_size=3)
    image = np.zeros((4, 4, 3), np.uint8)
    for index in range(10):
        source._offer(Frame(index=index, t=index / 25, image=image))
    assert source.frames_dropped == 7
    kept = [source._queue.get_nowait().index for _ in range(3)]
    assert kept == [7, 8, 9]


def test_a_dead_stream_is_retried_with_backoff_then_given_up():
    source = StreamSource("rtsp://127.0.0.1:9/none", queue_size=2, reconnect_max_seconds=0.5, give_up_after=1.2)
    started = time.monotonic()
    frames = list(source.frames())
    assert frames == []
    assert source.reconnects >= 2
    assert time.monotonic() - started < 20
    assert "delivered no frame" in source.truncation()


def test_open_source_picks_by_scheme(tmp_path):
    assert isinstance(open_source("rtsp://127.0.0.1:9/x"), StreamSource)
    assert isinstance(open_source("https://127.0.0.1:9/x.mjpg"), StreamSource)
    with pytest.raises(VideoSourceError, match="no such file"):
        open_source(tmp_path / "missing.avi")
    with pytest.raises(VideoSourceError, match="is a folder"):
        VideoFileSource(tmp_path)


def test_detector_config_has_bounds_and_no_unknown_keys():
    assert DetectorConfig.from_dict({"min_track_frames": 8}).min_track_frames == 8
    with pytest.raises(VisionConfigError, match="min_track_frames"):
        DetectorConfig.from_dict({"min_track_frames": 3})  # the gate needs at least 5
    with pytest.raises(VisionConfigError, match="diff_treshold"):
        DetectorConfig.from_dict({"diff_treshold": 10})
    with pytest.raises(Exception):
        DetectorConfig().min_track_frames = 9  # frozen


def test_camera_config_validates_nested_detector():
    cfg = CameraConfig.from_dict({"code": "CAM-F-001", "source": "rtsp://cam/1", "detector": {"max_gap_frames": 2}})
    assert cfg.detector.max_gap_frames == 2 and cfg.queue_size == 50
    with pytest.raises(VisionConfigError, match="detector.bogus"):
        CameraConfig.from_dict({"code": "C", "source": "x.avi", "detector": {"bogus": 1}})
    with pytest.raises(VisionConfigError, match="source"):
        CameraConfig.from_dict({"code": "C"})
