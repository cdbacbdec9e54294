"""Test set-up: a fresh test database on a real PostGIS, migrated and loaded with the demo.

The database server is the project's own embedded cluster (started here if needed)
or the server of ``ONEMAP_DATABASE_URL``. The test database is named by
``ONEMAP_TEST_DATABASE`` (default ``onemap_test``) and recreated once per run.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from host.embedded_db import ensure_running, recreate_database
from servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
TEST_DB = os.environ.get("ONEMAP_TEST_DATABASE", "onemap_test")
DEMO_SEED = 20261126

# headless-Chromium fixtures (tests/ is on sys.path: pytest prepends this folder, which has no __init__.py)
pytest_plugins = ["conftest_browser"]


def _recreate_test_database() -> str:
    server_url = ensure_running(log=lambda msg: print(msg, file=sys.stderr))
    return recreate_database(server_url, TEST_DB)


# Runs at import, before Django reads its settings: the whole run talks to the test database.
TEST_DATABASE_URL = _recreate_test_database()
os.environ["ONEMAP_DATABASE_URL"] = TEST_DATABASE_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")

import django  # noqa: E402

django.setup()


@pytest.fixture(scope="session")
def database_url() -> str:
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def migrated_db():
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def demo_db(migrated_db):
    """The demo community, loaded once for the whole run (tests must not change it for good)."""
    from data.demo import load_demo

    summary = load_demo(seed=DEMO_SEED)
    return summary


@pytest.fixture
def rollback(demo_db):
    """Run a test inside a transaction that is rolled back afterwards."""
    from django.db import transaction

    class _Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


@dataclass(frozen=True)
class Account:
    username: str
    token: str
    role: str
    grid_code: str | None = None

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.token)


@pytest.fixture
def accounts(_accounts) -> dict[str, Account]:
    """A signed-in user of every role with a personal access token; two grid workers in neighbouring grids.

    A test that swaps in the city data drops grid workers' bindings; they are bound again here.
    """
    from gis.accounts.services import user_create
    from gis.models import AccessProfile

    for account in _accounts.values():
        if not AccessProfile.objects.filter(user__username=account.username).exists():
            user_create(username=account.username, role=account.role, grid_code=account.grid_code)
    return _accounts


@pytest.fixture
def worker(accounts) -> Account:
    """The grid worker of the first level-3 grid."""
    return accounts["worker"]


@pytest.fixture
def own_grid(worker):
    from gis.models import Grid

    return Grid.objects.get(code=worker.grid_code)


@pytest.fixture
def other_grid(accounts):
    """The neighbouring grid, whose worker is ``accounts["worker2"]``."""
    from gis.models import Grid

    return Grid.objects.get(code=accounts["worker2"].grid_code)


@pytest.fixture(scope="session")
def _accounts(demo_db) -> dict[str, Account]:
    from gis.accounts.services import token_create, user_create
    from gis.models import Grid

    first, second = Grid.objects.filter(level=3).order_by("code")[:2]
    specs = {
        "administrator": ("administrator", None),
        "commander": ("commander", None),
        "analyst": ("analyst", None),
        "department": ("department", None),
        "worker": ("grid_worker", first.code),
        "worker2": ("grid_worker", second.code),
    }
    made = {}
    for key, (role, grid_code) in specs.items():
        username = f"test_{key}"
        user_create(username=username, role=role, grid_code=grid_code)
        _, token = token_create(username=username, name="tests")
        made[key] = Account(username, token, role, grid_code)
    return made


def _server(name: str, **kw) -> ServerProcess:
    """A server over the test database, logging to ``.var/test-{name}-{TEST_DB}.log``."""
    return ServerProcess(root=ROOT, database_url=TEST_DATABASE_URL,
                         log_path=ROOT / ".var" / f"test-{name}-{TEST_DB}.log", **kw)


@pytest.fixture
def server_process(demo_db):
    """Make servers of one's own (``server_process(name, workers=...)``, started); stopped after the test."""
    made: list[ServerProcess] = []

    def make(name: str, **kw) -> ServerProcess:
        made.append(_server(name, **kw))
        return made[-1].start()

    yield make
    for server in made:
        server.stop()


@pytest.fixture(scope="session")
def live_server(demo_db):
    """The real server (``onemap serve``, granian) on a free loopback port, over the test database."""
    server = _server("server")
    server.log_path.unlink(missing_ok=True)
    server.start()
    yield server.base_url
    server.stop()
