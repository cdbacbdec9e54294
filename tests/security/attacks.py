"""What the attacking suite shares: the profile (quick or long), HTTP helpers and the attack strings.

Not a test module: the tests in this folder import it (pytest puts this folder on ``sys.path``).
``ONEMAP_SECURITY_PROFILE=long`` (``make test-security``) runs every generator far longer than
the quick profile ``make test`` runs.
"""

from __future__ import annotations

import json
import os

import requests

PROFILE = os.environ.get("ONEMAP_SECURITY_PROFILE", "quick")
LONG = PROFILE == "long"

# markup and script breakers, each of which, if it ever ran, would set window.__onemap_xss
XSS_MARK = "__onemap_xss"
XSS_STRINGS = (
    f"</script><img src=x onerror=\"window.{XSS_MARK}=1\">",
    f"<script>window.{XSS_MARK}=2</script>",
    f"\"><svg onload=\"window.{XSS_MARK}=3\">",
    f"'><img src=x onerror='window.{XSS_MARK}=4'>",
    f"javascript:window.{XSS_MARK}=5",
    f"\u2028</script><script>window.{XSS_MARK}=6</script>",
    f"<!--<script>window.{XSS_MARK}=7</script>-->",
)


def get(url: str, auth=None, **params) -> requests.Response:
    return requests.get(url, params=params, auth=auth, timeout=60, allow_redirects=False)


def write(method: str, url: str, auth, body, *, content_type: str = "application/geo+json",
          headers: dict | None = None) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.request(method, url, data=data, auth=auth, timeout=60, allow_redirects=False,
                            headers={"Content-Type": content_type, **(headers or {})})


def point_feature(lon: float, lat: float, **properties) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"category": "sanitation", **properties}}


def square_feature(lon: float, lat: float, side: float = 0.00005, **properties) -> dict:
    ring = [[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side], [lon, lat]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": properties}


def assert_ogc_error(response: requests.Response, status: int, *words: str) -> dict:
    """The response is an OGC exception of ``status`` whose description holds every one of ``words``."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert {"code", "description"} <= body.keys(), body
    for word in words:
        assert word in body["description"], (word, body["description"])
    return body


# ---------------------------------------------------------------- a database of one's own


def onemap_command(database_url: str, *args: str, timeout_s: float = 600) -> str:
    """``onemap ARGS`` against ``database_url`` in a child process; its standard output."""
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, ONEMAP_DATABASE_URL=database_url)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run([sys.executable, "-m", "host.cli", *args], cwd=Path(__file__).resolve().parents[2],
                            env=env, capture_output=True, text=True, timeout=timeout_s)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result.stdout


def scratch_database(server_url: str, name: str, *, roles: dict[str, tuple[str, str | None]]) -> tuple[str, dict]:
    """A database ``name`` made afresh with the demo and a user with a token per role; (url, {key: (user, token)}).

    ``roles`` maps a key to (role, grid code or None); a grid code "first" is the first level-3 grid.
    Attacks that write, or that kill the database, run here and leave the shared test database alone.
    """
    import psycopg

    from host.embedded_db import recreate_database

    url = recreate_database(server_url, name)
    onemap_command(url, "migrate")
    onemap_command(url, "load-demo", "--seed", "7")
    with psycopg.connect(url) as conn:
        first = conn.execute("SELECT code FROM grids WHERE level = 3 ORDER BY code LIMIT 1").fetchone()[0]
    accounts = {}
    for key, (role, grid) in roles.items():
        username = f"attacker_{key}"
        extra = ["--grid", first if grid == "first" else grid] if grid else []
        onemap_command(url, "user", "add", username, "--role", role, *extra)
        token = "om_" + onemap_command(url, "token", "create", username).split("om_", 1)[1].split()[0]
        accounts[key] = (username, token)
    return url, accounts
