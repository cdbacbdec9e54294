"""The embedded default database: initdb once, restart-safe, clear messages when something is missing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import psycopg
import pytest

from host.embedded_db import EmbeddedCluster, EmbeddedDatabaseError, find_postgres_bindir
from core.settings import (
    ConfigError,
    OnemapSettings,
    database_settings,
    with_database_name,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scratch_cluster():
    # under the checkout, not /tmp: as root the server runs as 'postgres', which must reach the folder
    var_dir = os.path.join(ROOT, ".var", f"test-cluster-{os.getpid()}")
    cluster = EmbeddedCluster(var_dir, _free_port())
    yield cluster
    try:
        cluster.stop(log=lambda m: None)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


@pytest.mark.slow
def test_start_is_idempotent_and_data_survives_a_restart(scratch_cluster):
    cluster = scratch_cluster
    status = cluster.start(log=lambda m: None)
    assert status.running and status.initialised
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'postgis'").fetchone()
        conn.execute("CREATE TABLE survivor (x int)")
        conn.execute("INSERT INTO survivor VALUES (42)")
    pid = status.pid
    assert cluster.start(log=lambda m: None).pid == pid  # already running: nothing restarted
    assert not cluster.stop(log=lambda m: None).running
    assert cluster.start(log=lambda m: None).running
    with psycopg.connect(cluster.url()) as conn:
        assert conn.execute("SELECT x FROM survivor").fetchone() == (42,)


def test_password_is_required_over_tcp(scratch_cluster):
    cluster = scratch_cluster
    cluster.start(log=lambda m: None)
    wrong = cluster.url().replace("onemap:", "onemap:wrong", 1)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(wrong, connect_timeout=5)


def test_a_taken_port_is_reported(scratch_cluster):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        scratch_cluster.port = busy.getsockname()[1]
        with pytest.raises(EmbeddedDatabaseError, match="ONEMAP_DB_PORT"):
            scratch_cluster.start(log=lambda m: None)


def test_missing_postgresql_names_the_install_command(monkeypatch):
    monkeypatch.setenv("ONEMAP_PG_BINDIR", "/nonexistent/bin")
    with pytest.raises(EmbeddedDatabaseError, match="apt-get install"):
        find_postgres_bindir()


def test_db_status_command():
    result = subprocess.run([sys.executable, "-m", "host.cli", "db", "status"], capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k != "ONEMAP_DATABASE_URL"}, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "running" in result.stdout


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u:p%40ss@db.example:5433/onemap", {"USER": "u", "PASSWORD": "p@ss", "HOST": "db.example", "PORT": "5433", "NAME": "onemap"}),
        ("postgis://u@/onemap?host=/var/run/postgresql", {"HOST": "/var/run/postgresql", "NAME": "onemap"}),
        ("postgres://u@localhost/x?sslmode=require", {"OPTIONS": {"sslmode": "require"}}),
    ],
)
def test_database_url_parsing(url, expected):
    settings = database_settings(url)
    for key, value in expected.items():
        assert settings[key] == value
    assert settings["ENGINE"] == "django.contrib.gis.db.backends.postgis"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql://u@h:5432/", "localhost:5432"])
def test_bad_database_urls(url):
    with pytest.raises(ConfigError):
        database_settings(url)


def test_bad_settings_are_explained():
    with pytest.raises(ConfigError, match="ONEMAP_DB_PORT"):
        OnemapSettings.from_env({"ONEMAP_DB_PORT": "eighty"})
    with pytest.raises(ConfigError, match="ONEMAP_DEBUG"):
        OnemapSettings.from_env({"ONEMAP_DEBUG": "maybe"})
    assert with_database_name("postgresql://a:b@h:1/x?sslmode=disable", "y") == "postgresql://a:b@h:1/y?sslmode=disable"


@pytest.mark.slow
def test_start_recovers_after_the_server_was_killed(scratch_cluster):
    import signal
    import time

    cluster = scratch_cluster
    pid = cluster.start(log=lambda m: None).pid
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (7)")
        conn.execute("CHECKPOINT")
    os.kill(pid, signal.SIGKILL)  # a crash: postmaster.pid is left behind
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and cluster.status().running:
        time.sleep(0.2)
    status = cluster.start(log=lambda m: None)
    assert status.running and status.pid != pid
    with psycopg.connect(cluster.url()) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone() == (7,)
