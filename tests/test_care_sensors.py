"""``onemap sensors``: list, add, bind, health against the test database; the simulator against a real Mosquitto."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter

import pytest

from gis import models as m
from host.cli import main as onemap


def test_add_bind_list_and_health(rollback, own_grid, capsys):
    building = m.Building.objects.filter(grid=own_grid).order_by("id").first()
    subject = m.CareSubject.objects.filter(grid=own_grid, sensors__isnull=True).order_by("id").first()
    assert onemap(["sensors", "add", "SEN-CLI-1", "--building", building.code]) == 0
    assert onemap(["sensors", "bind", "SEN-CLI-1", subject.code]) == 0
    sensor = m.Sensor.objects.get(code="SEN-CLI-1")
    assert sensor.care_subject_id == subject.id and sensor.building_id == subject.building_id
    assert onemap(["sensors", "bind", "SEN-CLI-1", "CS-NOBODY"]) == 1
    assert "no person under care CS-NOBODY" in capsys.readouterr().err
    assert onemap(["sensors", "list", "--json"]) == 0
    listed = {r["code"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["SEN-CLI-1"]["care_subject__code"] == subject.code
    m.Sensor.objects.filter(code="SEN-CLI-1").update(battery_pct=9)
    assert onemap(["sensors", "health", "SEN-CLI-1", "--json"]) == 0
    health, = json.loads(capsys.readouterr().out)
    assert health["health"] == "battery_low"  # created just now, so heard from recently enough
    assert onemap(["sensors", "bind", "SEN-CLI-1", "--unbind"]) == 0
    assert m.Sensor.objects.get(code="SEN-CLI-1").care_subject_id is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broker(tmp_path):
    """A Mosquitto of the test's own on a free loopback port (anonymous, as the demo's device user is optional)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not shutil.os.path.exists(binary):
        pytest.skip("mosquitto is not installed")
    port = _free_port()
    config = tmp_path / "mosquitto.conf"
    # no cap on a slow subscriber's queue (1,000 by default): the test's listener must hear every message
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"mqtt://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_the_simulator_publishes_doors_heartbeats_and_batteries_and_silences_two(rollback, broker):
    import paho.mqtt.client as mqtt

    from data.sensor_simulator import simulate

    heard: list[tuple[str, dict]] = []
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_message = lambda client, userdata, msg: heard.append((msg.topic.split("/")[2], json.loads(msg.payload)))
    subscribed = threading.Event()
    listener.on_subscribe = lambda *a: subscribed.set()
    port = int(broker.rsplit(":", 1)[1])
    listener.connect("127.0.0.1", port)
    listener.subscribe("onemap/sensors/+/events", qos=1)
    listener.loop_start()
    assert subscribed.wait(5)
    rules_before = dict(m.CareSubject.objects.values_list("id", "monitoring_rule"))
    report = simulate(url=broker, speed=86400 / 2, heartbeat_s=1.0, silent=2, duration_s=4.5, log=lambda *_: None)
    assert report.unacknowledged == 0  # the broker acknowledged every message before the simulator closed
    deadline = time.monotonic() + 60  # everything published reaches the listener (QoS 1), however loaded the host
    while len(heard) < report.published and time.monotonic() < deadline:
        time.sleep(0.1)
    listener.loop_stop()
    bound = m.Sensor.objects.filter(care_subject__isnull=False)
    assert report.devices == bound.count() == 310 and len(report.silent) == 2
    kinds = Counter(body["type"] for _, body in heard)
    assert kinds == report.by_type and sum(kinds.values()) == report.published
    # every device beat at least once (the first beat falls within heartbeat_s of the start); doors open and close
    assert len({code for code, body in heard if body["type"] == "heartbeat"}) == 310
    assert kinds["door_open"] > 100 and kinds["door_close"] == kinds["door_open"]
    assert kinds["sighting"] > 0
    silent_codes = set(bound.filter(care_subject__code__in=report.silent).values_list("code", flat=True))
    assert {body["type"] for code, body in heard if code in silent_codes} == {"heartbeat"}
    seqs = Counter((code, body["seq"]) for code, body in heard)
    assert max(seqs.values()) == 1  # (sensor, seq) never repeats
    assert all("battery" in body for _, body in heard if body["type"] == "heartbeat")
    assert all(body["ts"].endswith(("+08:00", "+00:00", "Z")) or "+" in body["ts"] for _, body in heard)
    # the silent people's rule was compressed for the run and is back as it was
    assert dict(m.CareSubject.objects.values_list("id", "monitoring_rule")) == rules_before
