"""Sensor ingest against a real Mosquitto and a real ``onemap ingest`` process.

The broker is the project's own (``host.mqtt_broker.EmbeddedBroker``) in a folder and on a port
of this module's own; the ingest is ``python -m host.cli ingest`` over the test database, pointed
at that broker through ``ONEMAP_MQTT_URL``. Devices are paho clients signed in with credentials
issued by ``gis.care.credentials``. The sensors, people and gateway here are made by this module
(codes ``TST-ING-…``) and removed afterwards, so the demo's own are untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from servers import free_port

from host.mqtt_broker import INGEST_USER, EmbeddedBroker

ROOT = Path(__file__).resolve().parent.parent
TEST_DB = os.environ.get("ONEMAP_TEST_DATABASE", "onemap_test")
PREFIX = "TST-ING-"
GHOST = f"{PREFIX}GHOST"  # may sign in to the broker, but no such sensor exists
GHOST_PASSWORD = "ghost-password-for-the-test"
NOT_AUTHORIZED = 135  # MQTT 5 reason code


# -- devices and the ingest process ------------------------------------------------------


class Device:
    """A device: a paho MQTT 5 client signed in with its own credentials, counting the broker's PUBACKs."""

    def __init__(self, port: int, username: str | None, password: str | None, *, client_id: str | None = None,
                 persistent: bool = False, will: tuple[str, str] | None = None, wait: bool = True):
        self.username = username
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=client_id or f"{username}-{uuid.uuid4().hex[:8]}")
        if username is not None:
            self.client.username_pw_set(username, password)
        if will:
            self.client.will_set(will[0], will[1], qos=1)
        self.acks: dict[int, int] = {}  # mid -> PUBACK reason code
        self.connack = None
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_publish = lambda c, u, mid, reason, props: self.acks.__setitem__(mid, reason.value)
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=1)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600 if persistent else 0
        self.client.connect("127.0.0.1", port, keepalive=10, clean_start=not persistent, properties=properties)
        self.client.loop_start()
        if wait:
            assert self.connected.wait(10), "no CONNACK"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connack = reason_code
        self.connected.set()

    def event(self, seq: int, type: str = "door_open", ts: datetime | None = None, *, topic_code: str | None = None,
              **extra) -> int:
        body = {"ts": (ts or datetime.now(UTC)).isoformat(), "type": type, "seq": seq, **extra}
        import json

        return self.publish(f"onemap/sensors/{topic_code or self.username}/events", json.dumps(body))

    def publish(self, topic: str, payload) -> int:
        return self.client.publish(topic, payload, qos=1).mid

    def wait_acked(self, mids, timeout_s: float = 20) -> None:
        wait_for(lambda: all(mid in self.acks for mid in mids), timeout_s, f"PUBACKs for {self.username}")

    def close(self, *, clean: bool = True) -> None:
        if clean:
            self.client.disconnect()
        self.client.loop_stop()
        if not clean:
            with contextlib.suppress(OSError, AttributeError):
                self.client.socket().close()  # gone without a DISCONNECT: the broker publishes the will


class IngestProcess:
    """``onemap ingest`` in its own process group, logging to a file."""

    def __init__(self, *, database_url: str, broker: EmbeddedBroker, log_path: Path, args: list[str] | None = None):
        self.database_url, self.broker, self.log_path = database_url, broker, log_path
        self.args = args or []
        self.process: subprocess.Popen | None = None
        self._offset = 0

    def start(self) -> "IngestProcess":
        env = dict(os.environ, ONEMAP_DATABASE_URL=self.database_url,
                   ONEMAP_MQTT_URL=f"mqtt://{INGEST_USER}:{self.broker.ingest_password()}@127.0.0.1:{self.broker.port}",
                   ONEMAP_INGEST_SUMMARY_S="1", ONEMAP_INGEST_BATCH_WAIT_S="0.02")
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "host.cli", "ingest", *self.args], env=env, cwd=ROOT,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_log("ingest: connected", 30)
        return self

    def log(self) -> str:
        return self.log_path.read_bytes()[self._offset:].decode("utf-8", "replace")

    def wait_log(self, text: str, timeout_s: float = 15) -> None:
        wait_for(lambda: text in self.log() or self.process.poll() is not None, timeout_s, f"{text!r} in the log")
        assert self.process.poll() is None, f"the ingest exited: {self.log()[-2000:]}"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:g} s for {what}")
        time.sleep(0.05)


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def devices(demo_db):
    """Make sensors (``make(name, subject=True)`` -> (code, password)) and one gateway; removed afterwards."""
    from django.contrib.gis.geos import Point

    from gis.care.credentials import credential_issue
    from gis.models import CareSubject, DeviceCredential, Gateway, Sensor, SensorReject

    def clean():
        Sensor.objects.filter(code__startswith=PREFIX).delete()
        CareSubject.objects.filter(code__startswith=PREFIX).delete()
        Gateway.objects.filter(code__startswith=PREFIX).delete()
        DeviceCredential.objects.filter(username__startswith=PREFIX).delete()
        SensorReject.objects.filter(code__startswith=PREFIX).delete()

    clean()
    where = Point(113.66, 34.75, srid=4326)

    def make(name: str, *, subject: bool = False) -> tuple[str, str]:
        code = PREFIX + name
        person = CareSubject.objects.create(code=f"{code}-P", age_band="80-84", lives_alone=True, geom=where,
                                            synthetic=True) if subject else None
        Sensor.objects.create(code=code, kind="door_magnet", care_subject=person, geom=where, synthetic=True)
        return code, credential_issue(code=code)

    gateway = Gateway.objects.create(code=PREFIX + "GW", geom=where, synthetic=True, status="online")
    make.gateway = (gateway.code, credential_issue(code=gateway.code, kind="gateway"))
    yield make
    clean()


@pytest.fixture(scope="module")
def broker(devices):
    """The project's broker in a folder and on a port of this module's own."""
    root = ROOT / ".var" / f"test-ingest-{TEST_DB}"
    shutil.rmtree(root, ignore_errors=True)
    made = EmbeddedBroker(root, free_port())
    made.start(device_lines=_device_lines(), log=lambda _: None)
    yield made
    made.stop(log=lambda _: None)


def _device_lines() -> list[str]:
    from gis.care.credentials import password_file_lines
    from gis.care.passwords import password_digest

    return [*password_file_lines(), f"{GHOST}:{password_digest(GHOST_PASSWORD)}"]


def _sync(broker: EmbeddedBroker) -> None:
    """The new devices' passwords into the broker's file; SIGHUP."""
    broker.write_passwords(_device_lines())
    broker.reload()
    time.sleep(0.3)


@pytest.fixture(scope="module")
def ingest(broker, database_url):
    process = IngestProcess(database_url=database_url, broker=broker,
                            log_path=ROOT / ".var" / f"test-ingest-{TEST_DB}.log").start()
    yield process
    process.stop()


@pytest.fixture
def device(devices, broker, ingest):
    """A new sensor (with a person at home when ``subject=True``) signed in to the broker."""
    made = []

    def connect(name: str, *, subject: bool = False, **kw) -> Device:
        code, password = devices(name, subject=subject)
        _sync(broker)
        made.append(Device(broker.port, code, password, **kw))
        made[-1].password = password
        return made[-1]

    yield connect
    for one in made:
        one.close()


def stored(code: str) -> list[tuple[int, datetime, str]]:
    from gis.models import SensorEvent

    return list(SensorEvent.objects.filter(sensor__code=code).order_by("seq").values_list("seq", "ts", "type"))


def rejects(code: str) -> list[str]:
    from gis.models import SensorReject

    return list(SensorReject.objects.filter(code=code).order_by("id").values_list("reason", flat=True))


# -- the tests ---------------------------------------------------------------------------


def test_an_event_is_stored_with_the_sensor_and_the_persons_state(device, ingest):
    from gis.models import CareSubject, Sensor

    door = device("A", subject=True)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    mids = [door.event(1, "door_open", t0), door.event(2, "heartbeat", t0 + timedelta(seconds=30)),
            door.event(3, "battery", t0 + timedelta(seconds=60), battery_pct=9)]
    door.wait_acked(mids)
    assert set(door.acks.values()) == {0}
    wait_for(lambda: len(stored(door.username)) == 3, 15, "three events")
    sensor = Sensor.objects.get(code=door.username)
    assert (sensor.last_seq, sensor.last_seen_at) == (3, t0 + timedelta(seconds=60))
    assert sensor.last_heartbeat_at == t0 + timedelta(seconds=30)
    assert (sensor.battery_pct, sensor.status) == (9, "low_battery")
    assert CareSubject.objects.get(code=f"{door.username}-P").last_activity_at == t0


def test_a_repeated_message_is_one_event(device, ingest):
    door = device("DUP")
    ts = datetime.now(UTC) - timedelta(minutes=1)
    mids = [door.event(7, "door_open", ts) for _ in range(5)] + [door.event(8, "door_close", ts)]
    door.wait_acked(mids)
    wait_for(lambda: [s for s, _, _ in stored(door.username)] == [7, 8], 15, "seq 7 and 8 once each")
    time.sleep(0.5)
    assert [s for s, _, _ in stored(door.username)] == [7, 8]


def test_a_late_older_message_is_placed_by_its_time_and_moves_nothing_back(device, ingest):
    from gis.models import CareSubject, Sensor

    door = device("LATE", subject=True)
    now = datetime.now(UTC).replace(microsecond=0)
    door.wait_acked([door.event(20, "motion", now - timedelta(minutes=1)),
                     door.event(21, "battery", now - timedelta(minutes=1), battery_pct=80)])
    wait_for(lambda: len(stored(door.username)) == 2, 15, "the newer events")
    # sent later, stamped earlier: seq 19 and 18, an hour ago
    door.wait_acked([door.event(19, "door_open", now - timedelta(hours=1)),
                     door.event(18, "battery", now - timedelta(hours=1), battery_pct=5)])
    wait_for(lambda: len(stored(door.username)) == 4, 15, "the late events")
    by_seq = {seq: ts for seq, ts, _ in stored(door.username)}
    assert by_seq[19] == now - timedelta(hours=1) and by_seq[20] == now - timedelta(minutes=1)
    sensor = Sensor.objects.get(code=door.username)
    assert (sensor.last_seen_at, sensor.last_seq) == (now - timedelta(minutes=1), 21)
    assert (sensor.battery_pct, sensor.status) == (80, "online"), "an older battery reading replaced a newer one"
    assert CareSubject.objects.get(code=f"{door.username}-P").last_activity_at == now - timedelta(minutes=1)


MALFORMED = [
    (b"not json at all", "not JSON"),
    (b'["a list"]', "must be a JSON object"),
    (b'{"type": "door_open", "seq": 1}', "ts is missing"),
    (b'{"ts": "2026-12-07T10:00:00", "type": "door_open", "seq": 1}', "no time zone"),
    (b'{"ts": "yesterday", "type": "door_open", "seq": 1}', "not an ISO-8601"),
    (b'{"ts": "2026-12-07T10:00:00Z", "type": "explosion", "seq": 1}', "is not one of"),
    (b'{"ts": "2026-12-07T10:00:00Z", "type": "door_open", "seq": "one"}', "seq must be an integer"),
    (b'{"ts": "2026-12-07T10:00:00Z", "type": "door_open", "seq": -1}', "seq must be an integer"),
    (b'{"ts": "2026-12-07T10:00:00Z", "type": "battery", "seq": 1}', "needs battery_pct"),
    (b'{"ts": "2026-12-07T10:00:00Z", "type": "door_open", "seq": 1, "note": "a\\u0000b"}', "NUL"),
    (b'{"ts": "2026-12-07T10:00:00Z", "type": "door_open", "seq": 1, "note": "\\ud800"}', "surrogate"),
    (b"\xff\xfe\x00garbage", "not JSON"),
    (b"[" * 3000 + b"]" * 3000, "nested too deep"),
    (b'{"ts": "2026-12-07T10:00:00Z", "type": "door_open", "seq": 1, "pad": "' + b"x" * 9000 + b'"}', "at most 8,192"),
]


def test_malformed_messages_are_rejected_with_their_reason_and_the_consumer_goes_on(device, ingest):
    door = device("BAD")
    mids = [door.publish(f"onemap/sensors/{door.username}/events", body) for body, _ in MALFORMED]
    far = datetime.now(UTC) + timedelta(hours=2)
    mids.append(door.event(1, "door_open", far))
    mids.append(door.event(2, "door_open"))  # a good one after all of them
    door.wait_acked(mids)
    wait_for(lambda: len(stored(door.username)) == 1, 15, "the one good event")
    wait_for(lambda: len(rejects(door.username)) == len(MALFORMED) + 1, 15, "a reject row per bad message")
    reasons = rejects(door.username)
    for (_, words), reason in zip(MALFORMED, reasons):
        assert words in reason, (words, reason)
    assert "in the future" in reasons[-1]
    for words in ("not JSON", "ts is missing", "in the future"):
        assert f"from {door.username}: " in ingest.log() and words in ingest.log()
    assert ingest.process.poll() is None


def test_a_message_for_an_unknown_sensor_is_rejected(broker, ingest, devices):
    ghost = Device(broker.port, GHOST, GHOST_PASSWORD)
    try:
        ghost.wait_acked([ghost.event(1)])
        wait_for(lambda: rejects(GHOST), 15, "the reject")
        assert rejects(GHOST) == [f"no sensor {GHOST!r}"]
        ingest.wait_log(f"rejected a sensor message from {GHOST}: no sensor")
    finally:
        ghost.close()


@pytest.mark.parametrize("username, password", [("right-user", "wrong"), (None, None), ("nobody-at-all", "x")])
def test_wrong_credentials_are_refused_by_the_broker(device, broker, username, password):
    door = device(f"CRED{len(str(username))}")
    username = door.username if username == "right-user" else username
    intruder = Device(broker.port, username, password, wait=True)
    try:
        assert intruder.connack.is_failure and intruder.connack.value in (134, 135), intruder.connack
        intruder.client.publish(f"onemap/sensors/{door.username}/events", b'{"ts":"2026-12-07T10:00:00Z"}', qos=1)
        time.sleep(0.5)
        assert stored(door.username) == [] and rejects(door.username) == []
    finally:
        intruder.close()


def test_a_device_may_not_publish_to_another_devices_topic(device, ingest):
    mine, other = device("ACL1"), device("ACL2")
    mid = mine.event(1, topic_code=other.username)
    mine.wait_acked([mid])
    assert mine.acks[mid] == NOT_AUTHORIZED
    mine.wait_acked([mine.event(2)])  # its own topic still works
    wait_for(lambda: len(stored(mine.username)) == 1, 15, "its own event")
    time.sleep(0.5)
    assert stored(other.username) == [] and rejects(other.username) == []


def test_a_gateways_heartbeat_and_last_will(devices, broker, ingest):
    from gis.models import Gateway

    code, password = devices.gateway
    topic = f"onemap/gateways/{code}/status"
    gateway = Device(broker.port, code, password, will=(topic, '{"status": "offline"}'))
    beat = datetime.now(UTC).replace(microsecond=0)
    gateway.wait_acked([gateway.publish(topic, f'{{"status": "online", "ts": "{beat.isoformat()}"}}')])
    wait_for(lambda: Gateway.objects.get(code=code).last_seen_at == beat, 15, "the heartbeat")
    assert Gateway.objects.get(code=code).status == "online"
    gateway.close(clean=False)  # the connection drops: the broker sends the last-will
    wait_for(lambda: Gateway.objects.get(code=code).status == "offline", 20, "the last-will")
    assert Gateway.objects.get(code=code).last_seen_at == beat


def test_a_flood_from_one_device_is_limited_and_the_others_arrive_promptly(device, ingest):
    from gis.models import SensorReject

    flood, calm = device("FLOOD"), device("CALM")
    began = time.monotonic()
    flooded = [flood.event(seq) for seq in range(1, 5001)]
    calm_sent = time.monotonic()
    calm_mids = [calm.event(seq) for seq in range(1, 11)]
    wait_for(lambda: len(stored(calm.username)) == 10, 5, "the calm device's ten events within 5 s")
    calm_latency = time.monotonic() - calm_sent
    flood.wait_acked(flooded, 60)
    calm.wait_acked(calm_mids)
    elapsed = time.monotonic() - began
    time.sleep(1.5)
    kept = len(stored(flood.username))
    assert 100 <= kept <= 100 + 20 * elapsed + 20, (kept, elapsed)
    wait_for(lambda: SensorReject.objects.filter(code=flood.username, reason__startswith="rate-limited").exists(),
             10, "the rate-limited count")
    dropped = sum(SensorReject.objects.filter(code=flood.username).values_list("count", flat=True))
    assert kept + dropped == 5000
    print(f"\nflood: calm device's 10 events stored {calm_latency:.2f} s after sending; "
          f"flooder kept {kept} of 5000 in {elapsed:.1f} s")


def _stream(publisher: Device, seqs, *, pause_s: float) -> None:
    for seq in seqs:
        publisher.event(seq, "motion", datetime.now(UTC))
        time.sleep(pause_s)


def _acknowledged_seqs(publisher: Device, sent: dict[int, int]) -> set[int]:
    return {seq for mid, seq in sent.items() if publisher.acks.get(mid) == 0}


STREAM = 300
STREAM_PAUSE_S = 0.05  # 20 a second: within the device's share (ONEMAP_INGEST_RATE's default), so nothing is dropped


def _publish_through(publisher: Device, count: int, interruption, *, pause_s: float = STREAM_PAUSE_S) -> set[int]:
    """Publish ``count`` events, calling ``interruption()`` a third of the way; the seqs the broker acknowledged."""
    sent: dict[int, int] = {}

    def run():
        for seq in range(1, count + 1):
            sent[publisher.event(seq, "motion", datetime.now(UTC))] = seq
            time.sleep(pause_s)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: len(sent) >= count // 3, 30, "a third of the stream")
    interruption()
    thread.join(120)
    publisher.wait_acked(list(sent), 60)
    return _acknowledged_seqs(publisher, sent)


def test_a_broker_restart_mid_stream_loses_no_acknowledged_message(device, broker, ingest):
    publisher = device("BRESTART", client_id=f"{PREFIX}BRESTART-pub", persistent=True)

    def restart():
        broker.stop(log=lambda _: None)
        time.sleep(1.0)
        broker.start(device_lines=_device_lines(), log=lambda _: None)

    acknowledged = _publish_through(publisher, STREAM, restart)
    assert len(acknowledged) == STREAM
    wait_for(lambda: {s for s, _, _ in stored(publisher.username)} >= acknowledged, 60, "every acknowledged event")
    seqs = [s for s, _, _ in stored(publisher.username)]
    assert len(seqs) == len(set(seqs)) == STREAM
    assert rejects(publisher.username) == []
    ingest.wait_log("session resumed")


def test_the_ingest_killed_mid_stream_loses_no_acknowledged_message(device, broker, ingest):
    publisher = device("IKILL", client_id=f"{PREFIX}IKILL-pub", persistent=True)

    def kill_and_start():
        ingest.stop(signal.SIGKILL)  # received, perhaps not committed: the broker delivers it again
        time.sleep(0.5)
        ingest.start()

    acknowledged = _publish_through(publisher, STREAM, kill_and_start)
    assert len(acknowledged) == STREAM
    wait_for(lambda: {s for s, _, _ in stored(publisher.username)} >= acknowledged, 60, "every acknowledged event")
    assert len(stored(publisher.username)) == STREAM and rejects(publisher.username) == []


# -- the database restarted mid-stream: a PostgreSQL cluster of this test's own -----------


@pytest.fixture(scope="module")
def own_cluster():
    from host.embedded_db import EmbeddedCluster, EmbeddedDatabaseError

    var = ROOT / ".var" / "test-ingest-crash"
    port_file = var / "port"
    port = int(port_file.read_text()) if port_file.exists() else free_port()
    cluster = EmbeddedCluster(var, port)
    try:
        cluster.start(log=lambda _: None)
    except EmbeddedDatabaseError:
        cluster = EmbeddedCluster(var, free_port())
        cluster.start(log=lambda _: None)
    port_file.write_text(str(cluster.port))
    yield cluster
    _start_again(cluster)
    cluster.stop(log=lambda _: None)


def _start_again(cluster, timeout_s: float = 90) -> None:
    from host.embedded_db import EmbeddedDatabaseError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            cluster.start(log=lambda _: None)
            return
        except EmbeddedDatabaseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_a_database_restart_mid_stream_loses_no_acknowledged_message(own_cluster, broker, devices):
    import psycopg

    from host.embedded_db import recreate_database

    url = recreate_database(own_cluster.url("postgres"), "onemap_ingest_crash")
    env = dict(os.environ, ONEMAP_DATABASE_URL=url)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    subprocess.run([sys.executable, "-m", "host.cli", "migrate"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    code, password = devices("DBCRASH")  # its password, in the shared test database's rows, signs it in
    _sync(broker)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO sensors (code, synthetic, kind, status, geom) "
                     "VALUES (%s, true, 'door_magnet', 'online', ST_SetSRID(ST_MakePoint(113.66, 34.75), 4326))",
                     [code])
    # a session of its own beside the module's ingest (which stores this stream in the shared test database)
    process = IngestProcess(database_url=url, broker=broker, log_path=ROOT / ".var" / f"test-ingest-crash-{TEST_DB}.log",
                            args=["--client-id", "onemap-ingest-crash-test"]).start()
    publisher = Device(broker.port, code, password, client_id=f"{PREFIX}DBCRASH-pub", persistent=True)

    def crash_database():
        pid = int((own_cluster.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, signal.SIGKILL)
        time.sleep(3)  # messages arrive meanwhile: held, unacknowledged
        _start_again(own_cluster)

    try:
        acknowledged = _publish_through(publisher, STREAM, crash_database)
        assert len(acknowledged) == STREAM

        def in_database() -> set[int]:
            try:
                with psycopg.connect(url) as conn:
                    return {row[0] for row in conn.execute(
                        "SELECT e.seq FROM sensor_events e JOIN sensors s ON s.id = e.sensor_id WHERE s.code = %s",
                        [code])}
            except psycopg.OperationalError:
                return set()

        wait_for(lambda: in_database() >= acknowledged, 90, "every acknowledged event after the restart")
        with psycopg.connect(url) as conn:
            total = conn.execute("SELECT count(*) FROM sensor_events").fetchone()[0]
        assert total == len(in_database()) == STREAM
        assert "the database is unreachable" in process.log() and "the database is back" in process.log()
    finally:
        publisher.close()
        process.stop()


# -- the demo's device traffic, end to end ---------------------------------------------------


def test_the_demo_simulator_signs_in_per_device_and_its_traffic_is_stored(broker, ingest, database_url):
    """`onemap sensors simulate --issue-credentials` (what `onemap demo` starts): each demo sensor gets a password
    of its own, the broker (its ACL: a device writes only its own topic) takes their messages, the ingest stores
    them and keeps the people's state. The demo's rows are put back as they were afterwards."""
    from django.db import connection

    from gis.models import CareSubject, DeviceCredential, Sensor, SensorEvent, SensorReject

    bound = Sensor.objects.filter(care_subject__isnull=False)
    codes = list(bound.values_list("code", flat=True))
    before_ids = SensorEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    rejects_before = SensorReject.objects.count()
    sensors_before = list(bound.values("id", "last_seen_at", "last_seq", "last_heartbeat_at", "battery_pct", "status"))
    people_before = dict(CareSubject.objects.values_list("id", "last_activity_at"))
    env = dict(os.environ, ONEMAP_DATABASE_URL=database_url, ONEMAP_VAR_DIR=str(broker.root.parent),
               ONEMAP_MQTT_PORT=str(broker.port))
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.pop("ONEMAP_MQTT_URL", None)
    try:
        run = subprocess.run([sys.executable, "-m", "host.cli", "sensors", "simulate", "--issue-credentials",
                              "--duration", "4", "--speed", "43200", "--heartbeat", "1", "--silent", "0"],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        assert set(DeviceCredential.objects.filter(username__in=codes).values_list("username", flat=True)) == set(codes)
        new = SensorEvent.objects.filter(id__gt=before_ids, sensor__code__in=codes)
        wait_for(lambda: new.values("sensor").distinct().count() == len(codes), 30,
                 "a heartbeat of every demo sensor in the database")
        assert new.filter(type__in=["door_open", "sighting"]).exists()
        assert SensorReject.objects.count() == rejects_before  # nothing refused: each device wrote its own topic
        moved = CareSubject.objects.filter(id__in=bound.values("care_subject"), last_activity_at__gt=timezone_now()
                                           - timedelta(minutes=5))
        assert moved.exists()  # a door opened (or someone was seen): the person's state moved
    finally:
        SensorEvent.objects.filter(id__gt=before_ids, sensor__code__in=codes).delete()
        DeviceCredential.objects.filter(username__in=codes).delete()
        for row in sensors_before:
            Sensor.objects.filter(pk=row.pop("id")).update(**row)
        with connection.cursor() as cursor:
            cursor.executemany("UPDATE care_subjects SET last_activity_at = %s WHERE id = %s",
                               [(at, pk) for pk, at in people_before.items()])
        _sync(broker)


def timezone_now() -> datetime:
    return datetime.now(UTC)
