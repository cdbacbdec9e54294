"""Debian's QGIS 3.22 (python3-qgis, headless) against the live server: every layer through OAPIF and WFS, and WFS-T.

QGIS runs in its own process with the system Python (``tests/qgis_client.py``); without it
these tests skip and say how to install it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from core.vocabulary import PUBLISHED_CATEGORIES
from gis import models as m

SYSTEM_PYTHON = "/usr/bin/python3"
CLIENT = Path(__file__).with_name("qgis_client.py")


def _has_qgis() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True,
                          env=_env(), timeout=120).returncode == 0


_HOME: list[str] = []


def _env() -> dict:
    """A fresh home of QGIS's own (settings, network cache, the runtime directory Qt wants as 0700) per job.

    Per job, not per run: QGIS's network cache keys on the URL alone, so a job signed in as another
    user (or none) must not find the capabilities and schema an earlier job was given.
    """
    home = tempfile.mkdtemp(prefix="onemap-qgis-")
    _HOME.append(home)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "QT_QPA_PLATFORM": "offscreen",
            "XDG_RUNTIME_DIR": home, "LANG": "C.UTF-8"}


pytestmark = pytest.mark.skipif(
    not shutil.which(SYSTEM_PYTHON) or not _has_qgis(),
    reason="Debian's QGIS is not installed (apt-get install python3-qgis; scripts/bootstrap.sh does): "
           "the QGIS 3.22 client tests need /usr/bin/python3 to import qgis.core",
)


def _qgis(job: dict) -> dict:
    for attempt in (1, 2):
        done = subprocess.run([SYSTEM_PYTHON, str(CLIENT)], input=json.dumps(job), capture_output=True, text=True,
                              env=_env(), timeout=600)
        # QGIS 3.22's threaded WFS downloader now and then segfaults in a read (about 1 run in 5 here):
        # a read-only job is run once more; an edit job never is
        if done.returncode != -11 or job["action"] != "load":
            break
    if done.returncode == -11 and job["action"] == "load":
        # seen only for WFS:cameras, and only when the machine is busy; not yet understood (docs/wfs.md)
        pytest.xfail(f"QGIS 3.22 crashed (SIGSEGV) twice reading {job['layers']}: {done.stderr[-200:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _matched(base: str, layer_id: str, auth) -> int:
    return requests.get(f"{base}/ogc/collections/{layer_id}/items", params={"limit": 1}, auth=auth,
                        timeout=60).json()["numberMatched"]


@pytest.mark.parametrize("who", ["anonymous", "analyst", "worker"])
def test_qgis_loads_every_layer_through_oapif_and_wfs(live_server, accounts, who):
    from layers.catalogue import LAYERS

    account = accounts.get(who)
    role = account.role if account else "anonymous"
    layers = [lay.id for lay in LAYERS if lay.readable_by(role)]
    counts = {}
    for layer_id in layers:  # a process per layer: QGIS 3.22's WFS provider has crashed with many layers in one
        job = {"action": "load", "base": live_server, "layers": [layer_id]}
        if account:
            job.update(username=account.username, password=account.token)
        counts.update(_qgis(job))
    for layer_id in layers:
        expected = _matched(live_server, layer_id, account.auth if account else None)
        assert counts[f"OAPIF:{layer_id}"] == expected, (layer_id, counts)
        assert counts[f"WFS:{layer_id}"] == expected, (layer_id, counts)


@pytest.fixture
def dispatched_from_next_grid(accounts, own_grid, other_grid):
    """An incident of the neighbouring grid whose case was dispatched to the worker, who therefore sees it.

    The worker's user is bound to a worker of their grid and given a fresh token (the server
    remembers an identity per token for a while, and this one must know the binding); all of
    it is undone afterwards.
    """
    from core.identity import Identity
    from gis.accounts.services import grid_worker_bind, token_create, token_revoke
    from gis.cases import services as cases
    from gis.incidents.services import incident_create

    worker = m.GridWorker.objects.filter(grid=own_grid).order_by("code").first()
    grid_worker_bind(username=accounts["worker"].username, worker_code=worker.code)
    token, secret = token_create(username=accounts["worker"].username, name=f"qgis-{os.getpid()}")
    point = other_grid.geom.point_on_surface
    title = f"qgis-{os.getpid()}-dispatched"
    incident = incident_create(lon=point.x, lat=point.y, category=PUBLISHED_CATEGORIES[0], source="staff",
                               title=title, code=f"INC-QGIS-{os.getpid()}")
    commander = Identity(role="commander", username=accounts["commander"].username)
    case = cases.case_open(incident_id=incident.id)
    for action in ("accept", "file"):
        getattr(cases, f"case_{action}")(case_id=case.id, actor=commander)
    cases.case_dispatch(case_id=case.id, actor=commander, worker_id=worker.id)
    yield incident, title, secret
    m.Incident.objects.filter(pk=incident.pk).delete()
    token_revoke(token_id=token.id)
    m.GridWorker.objects.filter(pk=worker.pk).update(user=None)


def test_qgis_edits_incidents_through_wfst_inside_the_grid_only(live_server, accounts, own_grid, other_grid,
                                                                 dispatched_from_next_grid):
    worker = accounts["worker"]
    theirs, theirs_title, token = dispatched_from_next_grid
    inside, outside = own_grid.geom.point_on_surface, other_grid.geom.point_on_surface
    before = set(m.Incident.objects.values_list("id", flat=True))
    title = f"qgis-{os.getpid()}-"
    job = {"base": live_server, "username": worker.username, "password": token}
    try:
        out = _qgis({**job, "action": "edit", "inside": [inside.x, inside.y], "outside": [outside.x, outside.y],
                     "category": PUBLISHED_CATEGORIES[0], "title": title, "delete": False})
        assert out["valid"] and "Add Features" in out["capabilities"], out
        assert "Delete Features" in out["capabilities"], out  # a grid worker may withdraw their own new incidents
        assert out["add_inside"] is True, out
        assert out["add_outside"] is False, out
        new = m.Incident.objects.exclude(id__in=before)
        assert [i.title for i in new] == [title + "inside"], out  # exactly the one inside the grid
        incident = new.get()
        assert incident.grid_id == own_grid.id and m.Case.objects.filter(incident=incident).exists()
        assert out["change"] is True, out
        incident.refresh_from_db()
        assert (incident.notes, incident.severity) == ("changed in QGIS", 4)

        out = _qgis({**job, "action": "delete", "titles": [theirs_title, title + "inside"]})
        # outside the grid: the worker sees it (its case was dispatched to them), and may not delete it
        assert out[theirs_title]["found"] == 1 and out[theirs_title]["deleted"] is False, out
        # the incident they added, its case still new: withdrawn, with its case
        assert out[title + "inside"]["found"] == 1 and out[title + "inside"]["deleted"] is True, out
        assert not m.Incident.objects.exclude(id__in=before).exists()
        assert not m.Incident.objects.filter(pk=incident.pk).exists()
        assert not m.Case.objects.filter(incident_id=incident.pk).exists()
        theirs.refresh_from_db()
        assert theirs.grid_id == other_grid.id and m.Case.objects.get(incident=theirs).state == "dispatched"
    finally:
        m.Incident.objects.exclude(id__in=before).delete()
