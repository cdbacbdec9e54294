"""Benchmark: elder care at city scale — sensor ingest over MQTT end to end.

    python tests/bench/care.py [--subjects 100000] [--events 10000000] [--publishers 1] [--baseline 1000000]
    ONEMAP_BENCH_CARE_EVENTS=200000 python tests/bench/care.py      # a quick run

Everything runs on a PostgreSQL cluster and a Mosquitto of the bench's own, under
``$ONEMAP_VAR_DIR/bench-care`` (so ten million rows and a busy broker never touch the shared
cluster); its database is made afresh each run: migrated, ``--subjects`` people under care, each
with a door sensor.

- **ingest over MQTT, end to end**: ``--publishers`` processes (one connection each; a minimal
  MQTT 3.1.1 writer, see :func:`_publish`) publish ``--events`` sensor messages (QoS 1, round-robin
  over every sensor, so each device stays far inside its rate limit) to the project's broker; the
  real ``onemap ingest`` stores them. The rate is events committed in ``sensor_events`` per second,
  from the first publish to the last commit. Publishers hold back while more than ``WINDOW``
  messages are published but not yet committed, so the broker's queue stays bounded and the
  figure is what the ingest sustains. Goal: ≥ 5,000 events/s.
  Baseline, same run, same broker: ``mosquitto_pub -l -q 1`` → ``mosquitto_sub -q 1 -C N`` alone
  (``--baseline`` messages; no parsing, no database).

The issue's other figure, one full evaluation of the care rules over 100,000 people, is
``tests/bench/care_rules.py`` (a city database of its own; ``make bench`` runs both). Further
measurements on this bench's database are functions beside :func:`ingest_rate` in :data:`MEASURES`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BENCH_USER = "onemap-bench"
# the bench's publishers stand in for every device at once: a user of the bench's own broker only
BENCH_ACL = f"\nuser {BENCH_USER}\ntopic write onemap/sensors/#\n"
WINDOW = 200_000  # messages published but not yet committed, at most
TYPES = ("door_open", "door_close", "motion", "heartbeat")


@dataclass
class Bench:
    """What every measurement gets: the database, the broker, the sizes."""

    url: str
    broker: object  # host.mqtt_broker.EmbeddedBroker
    bench_password: str
    subjects: int
    events: int
    publishers: int
    baseline: int


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    bench = _set_up(args)
    rows = []
    try:
        for measure in MEASURES:
            rows += measure(bench)
    finally:
        bench.broker.stop(log=lambda _: None)
    _table(rows)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subjects", type=int, default=int(os.environ.get("ONEMAP_BENCH_CARE_SUBJECTS", 100_000)))
    p.add_argument("--events", type=int, default=int(os.environ.get("ONEMAP_BENCH_CARE_EVENTS", 10_000_000)))
    p.add_argument("--publishers", type=int, default=1, help="publishing processes (connections)")
    p.add_argument("--baseline", type=int, default=None,
                   help="messages for the mosquitto_pub/mosquitto_sub baseline (default: --events, at most 50,000)")
    return p


# -- set-up -------------------------------------------------------------------------------


def _set_up(args) -> Bench:
    import psycopg

    from core.settings import settings
    from gis.care.passwords import password_digest
    from host.embedded_db import EmbeddedCluster, recreate_database
    from host.mqtt_broker import EmbeddedBroker
    from servers import free_port

    var = settings().var_dir / "bench-care"
    var.mkdir(parents=True, exist_ok=True)
    port_file = var / "pg-port"
    cluster = EmbeddedCluster(var, int(port_file.read_text()) if port_file.exists() else free_port())
    cluster.start(log=lambda m: print(m, file=sys.stderr))
    port_file.write_text(str(cluster.port))
    url = recreate_database(cluster.url("postgres"), "onemap_bench_care")
    print(f"migrating and making {args.subjects:,} people under care with a door sensor each ...", flush=True)
    subprocess.run([sys.executable, "-m", "host.cli", "migrate"], env=_env(url), cwd=ROOT, check=True,
                   capture_output=True)
    began = time.monotonic()
    with psycopg.connect(url) as conn:
        conn.execute("""
            INSERT INTO care_subjects (code, synthetic, kind, age_band, lives_alone, monitoring_rule, care_level,
                                       active, geom)
            SELECT 'BENCH-P-' || n, true, 'elder', '80-84', n %% 3 = 0, '{"no_activity_hours": 48}', 1 + n %% 4, true,
                   ST_SetSRID(ST_MakePoint(113.55 + (n %% 400) * 0.0005, 34.70 + (n / 400) * 0.0004), 4326)
              FROM generate_series(1, %(n)s) n""", {"n": args.subjects})
        conn.execute("""
            INSERT INTO sensors (code, synthetic, kind, status, care_subject_id, geom)
            SELECT 'BENCH-S-' || substr(c.code, 9), true, 'door_magnet', 'online', c.id, c.geom
              FROM care_subjects c WHERE c.code LIKE 'BENCH-P-%%'""")
        conn.execute("ANALYZE")
    print(f"  made in {time.monotonic() - began:.1f} s", flush=True)
    EmbeddedBroker(var, 0).stop(log=lambda _: None)  # one left by an interrupted run
    shutil.rmtree(var / "mqtt", ignore_errors=True)
    broker = EmbeddedBroker(var, free_port(), extra_acl=BENCH_ACL)
    bench_password = "bench-" + os.urandom(8).hex()
    broker.start(device_lines=[f"{BENCH_USER}:{password_digest(bench_password)}"], log=lambda _: None)
    return Bench(url=url, broker=broker, bench_password=bench_password, subjects=args.subjects, events=args.events,
                 publishers=args.publishers, baseline=args.baseline or min(args.events, 50_000))


def _env(url: str, **extra) -> dict:
    env = dict(os.environ, ONEMAP_DATABASE_URL=url, **extra)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


# -- ingest over MQTT ------------------------------------------------------------------------


def ingest_rate(bench: Bench) -> list[tuple[str, str, str, str]]:
    """Events/s from the first publish to the last commit, beside mosquitto_pub → mosquitto_sub alone."""
    baseline = _baseline_rate(bench)
    stored, seconds, published_s = _end_to_end(bench)
    rate = stored / seconds
    return [
        ("baseline: mosquitto_pub -q 1 → mosquitto_sub -q 1", f"{bench.baseline:,} messages",
         f"{baseline:,.0f} msg/s", "1.00"),
        ("publishers → broker (PUBACKed)", f"{bench.events:,} events", f"{bench.events / published_s:,.0f} ev/s",
         f"{bench.events / published_s / baseline:.2f}"),
        ("ingest end to end (committed in sensor_events)", f"{stored:,} events over {bench.subjects:,} sensors",
         f"{rate:,.0f} ev/s {'≥' if rate >= 5000 else '<'} 5,000 goal", f"{rate / baseline:.2f}"),
    ]


def _baseline_rate(bench: Bench) -> float:
    broker = bench.broker
    n = bench.baseline
    topic = "onemap/sensors/BENCH-S-1/events"
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(broker.port), "-u", "onemap-ingest", "-P",
                            broker.ingest_password(), "-q", "1", "-t", topic, "-C", str(n), "-i", "bench-baseline-sub"],
                           stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    line = b'{"ts": "2026-12-07T10:00:00.000+08:00", "type": "door_open", "seq": 1}\n'
    began = time.monotonic()
    pub = subprocess.Popen(["mosquitto_pub", "-p", str(broker.port), "-u", BENCH_USER, "-P", bench.bench_password,
                            "-q", "1", "-t", topic, "-l"], stdin=subprocess.PIPE)
    chunk = line * 10_000
    for _ in range(n // 10_000):
        pub.stdin.write(chunk)
    pub.stdin.write(line * (n % 10_000))
    pub.stdin.close()
    pub.wait()
    try:
        sub.wait(timeout=max(60, n / 1000))
    except subprocess.TimeoutExpired:
        sub.kill()
        raise RuntimeError(f"mosquitto_sub did not get {n:,} messages; see {broker.log_file}") from None
    seconds = time.monotonic() - began
    print(f"baseline: {n:,} messages through mosquitto_pub → mosquitto_sub in {seconds:.1f} s", flush=True)
    return n / seconds


def _end_to_end(bench: Bench) -> tuple[int, float, float]:
    import psycopg

    log_path = bench.broker.root.parent / "ingest.log"
    connection = bench.broker.connection()
    env = _env(bench.url, ONEMAP_MQTT_URL=f"mqtt://{connection.username}:{connection.password}@127.0.0.1:"
                                          f"{connection.port}")
    with open(log_path, "wb") as log:
        ingest = subprocess.Popen([sys.executable, "-m", "host.cli", "ingest"], env=env, cwd=ROOT, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_line(log_path, "ingest: connected", ingest)
        committed = multiprocessing.Value("q", 0)
        published = multiprocessing.Value("q", 0)
        stop = multiprocessing.Event()
        share = [bench.events // bench.publishers + (1 if k < bench.events % bench.publishers else 0)
                 for k in range(bench.publishers)]
        workers = [multiprocessing.Process(target=_publish, args=(bench.broker.port, bench.bench_password, k,
                                                                  bench.publishers, share[k], bench.subjects,
                                                                  committed, published, stop))
                   for k in range(bench.publishers)]
        with psycopg.connect(bench.url, autocommit=True) as conn:
            began = time.monotonic()
            for worker in workers:
                worker.start()
            published_s = None
            last_report = began
            count = 0
            while count < bench.events:
                time.sleep(0.25)
                count = conn.execute("SELECT coalesce(max(id), 0) FROM sensor_events").fetchone()[0]
                committed.value = count
                if published_s is None and published.value >= bench.events:
                    published_s = time.monotonic() - began
                if time.monotonic() - last_report >= 30:
                    last_report = time.monotonic()
                    print(f"  {count:,} committed, {published.value:,} acknowledged by the broker after "
                          f"{last_report - began:.0f} s ({count / (last_report - began):,.0f} ev/s)", flush=True)
                if ingest.poll() is not None:
                    raise RuntimeError(f"onemap ingest exited; see {log_path}")
            seconds = time.monotonic() - began
            published_s = published_s or seconds
            stored = conn.execute("SELECT count(*) FROM sensor_events").fetchone()[0]
        stop.set()
        for worker in workers:
            worker.join(30)
        print(f"end to end: {stored:,} events committed in {seconds:.1f} s", flush=True)
        return stored, seconds, published_s
    finally:
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(30)


def _publish(port: int, password: str, index: int, publishers: int, count: int, sensors: int,
             committed, published, stop) -> None:
    """One publishing process: messages k = index, index + publishers, …, to sensor k % sensors, seq k // sensors.

    The publisher stands in for a hundred thousand devices that, in the field, run on their own
    hardware: so it is a minimal MQTT 3.1.1 writer that costs the two cores under test next to
    nothing (a thousand QoS 1 PUBLISH packets made at once and written in one send, the broker's
    PUBACKs counted by a reader thread). paho, the project's client, spent more CPU publishing
    than the ingest did receiving, which measured the load generator rather than the ingest.
    """
    import socket
    import struct
    import threading

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(_mqtt_connect(f"bench-publisher-{index}", BENCH_USER, password))
    connack = _recv_exactly(sock, 4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise RuntimeError(f"the broker refused the bench publisher: CONNACK {connack.hex()}")
    acked = [0]

    def count_pubacks() -> None:  # every packet the broker sends a QoS 1 publisher is a 4-byte PUBACK
        pending = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return
            pending += data
            whole = len(pending) // 4
            if any(pending[4 * i] != 0x40 for i in range(whole)):
                raise RuntimeError("the broker sent the bench publisher something other than PUBACK")
            pending = pending[4 * whole:]
            acked[0] += whole
            with published.get_lock():
                published.value += whole

    reader = threading.Thread(target=count_pubacks, daemon=True)
    reader.start()
    base = 1_796_600_000  # 2026-12-07 (UTC), one millisecond apart
    topics = [f"onemap/sensors/BENCH-S-{n}/events".encode() for n in range(1, sensors + 1)]
    second, prefix = None, ""
    sent, packets = 0, []
    for k in range(index, index + count * publishers, publishers):
        whole, ms = divmod(k, 1000)
        if whole != second:  # the date part once a second of messages: the publisher is not what is measured
            second, prefix = whole, time.strftime('{"ts": "%Y-%m-%dT%H:%M:%S', time.gmtime(base + whole))
        topic = topics[k % sensors]
        payload = f'{prefix}.{ms:03d}Z", "type": "{TYPES[k % 4]}", "seq": {k // sensors + 1}}}'.encode()
        mid = sent % 65535 + 1
        packets.append(b"\x32" + _remaining_length(4 + len(topic) + len(payload)) + struct.pack("!H", len(topic))
                       + topic + struct.pack("!H", mid) + payload)
        sent += 1
        if len(packets) == 1000:
            sock.sendall(b"".join(packets))
            packets.clear()
            # packet ids must not wrap onto unacknowledged ones; the broker's queue stays bounded
            while (acked[0] < sent - 30_000 or published.value - committed.value > WINDOW) and not stop.is_set():
                time.sleep(0.005)
    if packets:
        sock.sendall(b"".join(packets))
    while acked[0] < sent and not stop.is_set():
        time.sleep(0.01)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()


def _mqtt_connect(client_id: str, username: str, password: str) -> bytes:
    def field(text: str) -> bytes:
        data = text.encode()
        return len(data).to_bytes(2, "big") + data

    body = (field("MQTT") + bytes([4, 0xC2]) + (600).to_bytes(2, "big")  # 3.1.1; user, password, clean session
            + field(client_id) + field(username) + field(password))
    return b"\x10" + _remaining_length(len(body)) + body


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _recv_exactly(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise RuntimeError("the broker closed the bench publisher's connection")
        data += chunk
    return data


def _wait_for_line(path: Path, text: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} in {path}")
        time.sleep(0.1)


def _table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in rows + [("what", "size", "rate", "× baseline")]) for i in range(4)]
    header = ("what", "size", "rate", "× baseline")
    print()
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


# the measurements, in order; a further one takes the Bench and returns rows of the table
MEASURES = [ingest_rate]


if __name__ == "__main__":
    sys.exit(main())
