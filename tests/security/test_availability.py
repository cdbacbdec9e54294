"""Nobody can take reads down, and concurrent writes keep their order.

Once, about 20 anonymous requests with a filter that failed inside PostgreSQL left every
read of every user answering 500 until a restart (a poisoned connection went back to the
pool); ``onemap migrate`` while serving did the same. Concurrent status changes were
stamped with their transaction's start and shown out of order.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from attacks import LONG, get, write

from gis import models as m

FAILING_FILTERS = (
    "level * 2147483647 * 2147483647 > 1",  # integer overflow inside PostgreSQL
    "name LIKE '%' AND level * 2147483647 * 2147483647 > 1",
    "S_INTERSECTS(geometry, BBOX(-180, -90, 180, 90)) AND -level * 2147483647 * 2147483647 < 1",
)


def _reads_answer(base: str, accounts) -> None:
    """Items, item and HTML reads answer 200 for anonymous, an analyst and a grid worker."""
    grid = m.Grid.objects.get(code=accounts["worker"].grid_code)
    for auth in (None, accounts["analyst"].auth, accounts["worker"].auth):
        for url, params in ((f"{base}/ogc/collections/grids/items", {"limit": "2"}),
                            (f"{base}/ogc/collections/grids/items/{grid.id}", {}),
                            (f"{base}/ogc/collections/grids/items", {"f": "html", "limit": "2"}),
                            (f"{base}/ogc/collections/grids/items/{grid.id}", {"f": "html"}),
                            (f"{base}/ogc/collections/buildings/items", {"filter": "floors > 3", "limit": "1"})):
            response = get(url, auth, **params)
            assert response.status_code == 200, (url, params, response.status_code, response.text[:300])


def test_a_thousand_failing_filters_leave_every_read_working(server_process, accounts):
    server = server_process("security-pool", workers=1)  # one process: one pool takes every failure
    base = server.base_url
    _reads_answer(base, accounts)
    count = 5000 if LONG else 1000
    filters = itertools.islice(itertools.cycle(FAILING_FILTERS), count)

    def attack(cql: str) -> int:
        return get(f"{base}/ogc/collections/grids/items", None, filter=cql).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attack, filters))
    assert set(statuses) == {400}, {s: statuses.count(s) for s in set(statuses)}
    _reads_answer(base, accounts)


def test_migrate_while_serving_leaves_every_read_working(server_process, accounts):
    """The views are made again after every migrate; statements the server prepared on them are prepared afresh."""
    from django.core.management import call_command

    server = server_process("security-migrate", workers=1)
    for _ in range(3):  # prepare the reads on several of the pool's connections
        _reads_answer(server.base_url, accounts)
    call_command("migrate", verbosity=0, interactive=False)
    for _ in range(3):
        _reads_answer(server.base_url, accounts)


@pytest.mark.parametrize("round_", range(2))
def test_status_history_is_in_commit_order_under_concurrency(live_server, accounts, round_):
    """Many commanders change one incident's status at once; the history reads as one chain, stamps never going back."""
    incident = m.Incident.objects.exclude(category="elder_inactivity").order_by("id")[round_]
    url = f"{live_server}/ogc/collections/incidents/items/{incident.id}"
    statuses = ["dispatched", "in_progress", "new", "resolved", "dispatched", "new"]
    changes = 120 if LONG else 60
    original = {"status": incident.status, "resolved_at": incident.resolved_at}

    def change(n: int) -> int:
        status = statuses[n % len(statuses)]
        return write("PATCH", url, accounts["commander"].auth,
                     {"type": "Feature", "properties": {"status": status}}).status_code

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(change, range(changes))) == {204}
        history = requests.get(f"{live_server}/screen/api/incidents/{incident.id}",
                               auth=accounts["commander"].auth, timeout=30).json()["history"]
        changed = history[1:]
        assert len(changed) >= changes // 3
        for before, after in zip(changed, changed[1:]):
            assert after["from_status"] == before["to_status"], (before, after)
            assert after["at"] >= before["at"], (before, after)
        incident.refresh_from_db()
        assert changed[-1]["to_status"] == incident.status
    finally:
        m.Incident.objects.filter(pk=incident.pk).update(**original)  # the demo as generated, for later tests
