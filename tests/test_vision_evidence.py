"""vision.evidence: clips from a ring buffer, chained SHA-256 records, and `onemap vision verify`."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from vision.events import VisionEvent
from vision.evidence import EvidenceRecorder, read_head, verify

FPS = 10.0


def _event(first: int, last: int) -> VisionEvent:
    return VisionEvent(
        type="falling_object", t_start=first / FPS, t_end=last / FPS, confidence=0.9, frames=(first, last),
        trajectory=tuple((100.0, 20.0 + 5 * k) for k in range(last - first + 1)), origin_image=(100.0, 15.0),
        floor=None, column=None, location=None, evidence=None,
    )


def _record_events(root, spans, *, frames=80, camera="CAM-T-001"):
    """Feed grey frames to a recorder and report an event for each (first, last) span."""
    recorder = EvidenceRecorder(root=root, camera_code=camera, fps=FPS, pre_seconds=2.0, post_seconds=2.0)
    done = []
    for index in range(frames):
        image = np.full((120, 160, 3), index % 250, np.uint8)
        done += recorder.push(index, image)
        for n, (first, last) in enumerate(spans, start=1):
            if index == first + 5:
                recorder.start(n, first)
            if index == last + 3:
                done += recorder.end(n, first, last, _event(first, last))
    return done + recorder.flush()


@pytest.fixture
def chain(tmp_path):
    events = _record_events(tmp_path, [(25, 30), (40, 44), (60, 66)])
    return tmp_path / "CAM-T-001", events


def test_clips_run_from_two_seconds_before_to_two_seconds_after(chain):
    folder, events = chain
    assert [e.frames for e in events] == [(25, 30), (40, 44), (60, 66)]
    for event in events:
        cap = cv2.VideoCapture(event.evidence["clip"])
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, first = cap.read()
        cap.release()
        first_index = event.frames[0] - 20  # 2 s at 10 fps
        assert ok and abs(int(first[0, 0, 0]) - first_index % 250) <= 3  # the frame's grey level is its index
        assert count == min(event.frames[1] + 20, 79) - first_index + 1


def test_records_chain_and_verify_passes(chain):
    folder, events = chain
    report = verify(folder)
    assert report.ok, report.problems
    assert report.records == 3
    seq, head = read_head(folder)
    assert seq == 3 and head == events[-1].evidence["sha256"]["record"]
    second = json.loads((folder / "000002.json").read_text())
    assert second["previous_record_sha256"] == events[0].evidence["sha256"]["record"]


@pytest.mark.parametrize("name", ["000002.avi", "000002.jpg", "000002.json", "000003.json", "HEAD"])
def test_verify_catches_one_flipped_byte(chain, name):
    folder, _ = chain
    path = folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify(folder)
    assert not report.ok
    assert any(name in p or "HEAD" in p for p in report.problems), report.problems


@pytest.mark.parametrize("name", ["000001.json", "000002.json", "000003.json", "000002.avi", "000001.jpg"])
def test_verify_catches_a_deleted_file(chain, name):
    folder, _ = chain
    (folder / name).unlink()
    report = verify(folder)
    assert not report.ok
    assert any(name in p for p in report.problems), report.problems


def test_verify_of_a_folder_of_cameras(tmp_path):
    _record_events(tmp_path, [(25, 30)], camera="CAM-A")
    _record_events(tmp_path, [(25, 30), (50, 52)], camera="CAM-B")
    report = verify(tmp_path)
    assert report.ok and report.chains == 2 and report.records == 3


def test_a_new_run_extends_the_chain(tmp_path):
    _record_events(tmp_path, [(25, 30)])
    _record_events(tmp_path, [(40, 45)])
    report = verify(tmp_path / "CAM-T-001")
    assert report.ok and report.records == 2


def test_rejected_event_leaves_no_file(tmp_path):
    recorder = EvidenceRecorder(root=tmp_path, camera_code="CAM-X", fps=FPS, pre_seconds=2.0, post_seconds=2.0)
    for index in range(40):
        recorder.push(index, np.zeros((60, 80, 3), np.uint8))
        if index == 20:
            recorder.start(1, 15)
        if index == 30:
            recorder.end(1, 15, 28, None)
    assert recorder.flush() == []
    assert list((tmp_path / "CAM-X").iterdir()) == []


def test_verify_cli(chain, capsys):
    from host.cli import main

    folder, _ = chain
    assert main(["vision", "verify", str(folder)]) == 0
    assert "3 record(s) in 1 chain(s): OK" in capsys.readouterr().out
    shutil.copy(folder / "000001.jpg", folder / "000002.jpg")
    assert main(["vision", "verify", str(folder)]) == 1
    assert "000002.jpg: keyframe changed" in capsys.readouterr().out
