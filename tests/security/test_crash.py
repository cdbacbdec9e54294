"""Crashes: kill -9 of PostgreSQL during a write loop loses no acknowledged write; kill -9 of the server leaves nothing serving.

PostgreSQL here is a cluster of its own (under ``.var/security-crash/``), so killing it
does not touch the cluster the rest of the tests use. It is made once and kept; each run
recreates its database and loads the demo into it.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from attacks import LONG, point_feature, scratch_database
from servers import ServerProcess, free_port

from host.embedded_db import EmbeddedCluster, EmbeddedDatabaseError

ROOT = Path(__file__).resolve().parents[2]
CRASH_VAR = ROOT / ".var" / "security-crash"
WRITERS = 4


@pytest.fixture(scope="module")
def crash_cluster():
    """A cluster of this module's own, with the demo loaded and an administrator's token."""
    port_file = CRASH_VAR / "port"
    port = int(port_file.read_text()) if port_file.exists() else free_port()
    cluster = EmbeddedCluster(CRASH_VAR, port)
    try:
        cluster.start(log=lambda _: None)
    except EmbeddedDatabaseError:  # the kept port was taken meanwhile: move to a free one
        cluster = EmbeddedCluster(CRASH_VAR, free_port())
        cluster.start(log=lambda _: None)
    port_file.write_text(str(cluster.port))
    url, accounts = scratch_database(cluster.url("postgres"), "onemap_crash", roles={"admin": ("administrator", None)})
    yield cluster, url, accounts["admin"]
    _start_again(cluster)
    cluster.stop(log=lambda _: None)


def _postmaster_pid(cluster: EmbeddedCluster) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


def _start_again(cluster: EmbeddedCluster, timeout_s: float = 90) -> None:
    """Start the cluster after a crash; its old backends may hold shared memory for a moment."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            cluster.start(log=lambda _: None)
            return
        except EmbeddedDatabaseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class WriteLoop:
    """Threads POSTing incidents as fast as the server acknowledges them; every answer is kept."""

    def __init__(self, base_url: str, auth, point):
        self.url = f"{base_url}/ogc/collections/incidents/items"
        self.auth, self.point = auth, point
        self.acknowledged: list[tuple[int, str]] = []
        self.statuses: dict[int, int] = {}
        self.bad: list[str] = []  # answers that are neither 201 nor 503 with Retry-After
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(WRITERS)]

    def start(self) -> "WriteLoop":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def _run(self, writer: int) -> None:
        n = 0
        session = requests.Session()
        while not self._stop.is_set():
            n += 1
            title = f"crash-{writer}-{n}"
            try:
                response = session.post(self.url, json=point_feature(*self.point, title=title), auth=self.auth,
                                        timeout=30, headers={"Content-Type": "application/geo+json"})
            except requests.RequestException as exc:
                with self._lock:
                    self.bad.append(f"{title}: no answer ({exc})")
                continue
            with self._lock:
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                if response.status_code == 201:
                    self.acknowledged.append((int(response.headers["Location"].rsplit("/", 1)[1]), title))
                elif response.status_code != 503 or not response.headers.get("Retry-After"):
                    self.bad.append(f"{title}: {response.status_code} {response.text[:200]}")
            if response.status_code == 503:
                time.sleep(0.05)


OUTAGE_PROBES = ("/healthz", "/", "/ogc/collections/grids/items", "/ogc/collections/grids/items?f=html",
                 "/ogc/collections/incidents/items/1", "/screen/api/scenes", "/screen/density/")


def _probe(base_url: str, auth) -> dict:
    """What reads and pages answer now: {path: (status, Retry-After present)}."""
    answers = {}
    for path in OUTAGE_PROBES:
        response = requests.get(base_url + path, auth=auth, timeout=30, headers={"Accept": "text/html"})
        answers[path] = (response.status_code, bool(response.headers.get("Retry-After")))
    return answers


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_kill_9_of_postgresql_loses_no_acknowledged_write(crash_cluster, tmp_path):
    cluster, url, auth = crash_cluster
    with psycopg.connect(url) as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"  # durable by default
        lon, lat = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
                                "WHERE level = 3 ORDER BY code LIMIT 1) s").fetchone()
    server = ServerProcess(root=ROOT, database_url=url, log_path=tmp_path / "server.log", workers=2).start()
    crashes = 3 if LONG else 1
    target = 4000 if LONG else 1200
    loop = WriteLoop(server.base_url, auth, (lon, lat)).start()
    outage: list[dict] = []
    try:
        for crash in range(crashes):
            _wait_for(lambda: loop.count() >= target * (crash + 1) // (crashes + 1), 300, "acknowledged writes")
            os.kill(_postmaster_pid(cluster), signal.SIGKILL)
            _wait_for(lambda: loop.statuses.get(503, 0) > 0, 60, "503 while the database is down")
            outage.append(_probe(server.base_url, auth))
            _start_again(cluster)
        _wait_for(lambda: loop.count() >= target, 300, f"{target} acknowledged writes")
    finally:
        loop.stop()
        server.stop()
    assert not loop.bad, loop.bad[:10]
    for answers in outage:  # reads and pages while the database was down: 503 with Retry-After, not 500
        assert all(status == 503 and retry for status, retry in answers.values()), answers
    assert loop.statuses.get(503, 0) > 0, loop.statuses
    ids = [pk for pk, _ in loop.acknowledged]
    with psycopg.connect(url) as conn:
        stored = dict(conn.execute("SELECT id, title FROM incidents WHERE id = ANY(%s)", [ids]).fetchall())
    lost = [(pk, title) for pk, title in loop.acknowledged if stored.get(pk) != title]
    assert len(loop.acknowledged) >= target
    assert lost == [], f"{len(lost)} of {len(loop.acknowledged)} acknowledged writes lost: {lost[:10]}"


def _serving(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    return [child for child in _processes() if _status(child).get("PPid") == str(pid)]


def _alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` that still run (a zombie has ended)."""
    return [pid for pid in pids if _status(pid).get("State", "Z").split()[0] not in ("Z", "X")]


def _processes() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def test_kill_9_of_the_servers_main_process_leaves_nothing_serving(crash_cluster, tmp_path):
    _, url, _ = crash_cluster
    server = ServerProcess(root=ROOT, database_url=url, log_path=tmp_path / "server.log", workers=2).start()
    main = server._process.pid
    try:
        _wait_for(lambda: len(_children(main)) >= 2, 30, "the server's workers")
        workers = _children(main)
        os.kill(main, signal.SIGKILL)
        _wait_for(lambda: not _alive(workers), 10, f"workers {workers} to end")
        _wait_for(lambda: not _serving(server.port), 10, "the port to close")
        again = ServerProcess(root=ROOT, database_url=url, log_path=tmp_path / "again.log", port=server.port,
                              workers=1).start()  # the port is free for a new server, which serves alone
        again.stop()
        assert not _serving(server.port)
    finally:
        server.stop()
