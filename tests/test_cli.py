"""The ``onemap`` command: help, grid lookup, grid check; exit codes say what happened."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gis import models as m

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def onemap(*args, database_url=None):
    env = dict(os.environ)
    if database_url:
        env["ONEMAP_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "host.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_help_lists_the_commands():
    result = onemap("--help")
    assert result.returncode == 0
    for command in ("db", "load-demo", "import", "export", "serve", "demo", "worker", "grid-for-point", "check-grids"):
        assert command in result.stdout


def test_grid_for_point_inside_and_outside(demo_db, database_url):
    grid = m.Grid.objects.filter(level=3).order_by("code").first()
    point = grid.geom.point_on_surface
    inside = onemap("grid-for-point", str(point.x), str(point.y), database_url=database_url)
    assert inside.returncode == 0, inside.stderr
    assert grid.code in inside.stdout and grid.parent.code in inside.stdout
    outside = onemap("grid-for-point", "0", "0", database_url=database_url)
    assert outside.returncode == 1
    assert "no level-3 grid" in outside.stdout


def test_check_grids_passes_on_the_demo(demo_db, database_url):
    result = onemap("check-grids", database_url=database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problem(s)" in result.stdout


def test_a_bad_database_url_is_a_clear_error():
    result = onemap("check-grids", database_url="mysql://nobody@localhost/x")
    assert result.returncode != 0
    assert "postgresql://" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_demo_gives_the_big_screen_a_commander_login_and_keeps_it(demo_db, tmp_path, monkeypatch):
    from gis.accounts import services as accounts
    from gis.models import AccessToken
    from host.cli.web import DEMO_COMMANDER, demo_screen_login

    monkeypatch.setenv("ONEMAP_VAR_DIR", str(tmp_path))
    username, token = demo_screen_login()
    assert username == DEMO_COMMANDER
    kept = tmp_path / "demo-screen-token"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert demo_screen_login() == (username, token)  # the same login on the next start
    row = AccessToken.objects.get(digest=accounts.token_digest(token))
    assert row.user.access_profile.role == "commander"
    accounts.token_revoke(token_id=row.id)
    assert demo_screen_login()[1] != token  # a revoked token is replaced, not printed


@pytest.mark.parametrize("as_of, message", [("yesterday", "must be 'now' or an ISO 8601 time"),
                                            ("2026-12-07T12:00", "needs its UTC offset")])
def test_load_demo_refuses_a_moment_it_cannot_read(demo_db, database_url, as_of, message):
    before = m.Incident.objects.count()
    result = onemap("load-demo", "--as-of", as_of, database_url=database_url)
    assert result.returncode == 1 and message in result.stderr
    assert m.Incident.objects.count() == before
