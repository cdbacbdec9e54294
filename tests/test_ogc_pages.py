"""The OGC API's HTML pages in headless Chromium with every outside host blocked, as on a command-centre intranet.

Each page must load with no failed request, no console error, the product's title and
its vendored assets (``onemap vendor``): Bootstrap's CSS, Leaflet, Swagger UI.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from browser import open_page, wait_for

from gis import models as m

TITLE = "社区一张图 · Community One Map"


def _offline(page, base_url: str) -> list[str]:
    """Abort every request to a host other than the server under test; returns the list of aborted URLs."""
    own = urlsplit(base_url).netloc
    blocked: list[str] = []

    def route(route):
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https") and parts.netloc != own:
            blocked.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", route)
    return blocked


def _open_offline(chromium, live_server, path: str):
    page, log = open_page(chromium, base_url=live_server)
    blocked = _offline(page, live_server)
    page.goto(path, wait_until="networkidle")
    return page, log, blocked


def _assert_clean(log, blocked, path):
    assert not blocked, (path, blocked)
    assert not log.failed_requests, (path, log.failed_requests)
    assert not log.bad_responses, (path, log.bad_responses)
    assert not log.errors(), (path, log.describe())


@pytest.mark.parametrize("path", ["/ogc/", "/ogc/collections?f=html", "/ogc/collections/grids?f=html",
                                  "/ogc/collections/buildings/items?f=html&limit=20", "/ogc/conformance?f=html"])
def test_ogc_pages_work_offline(chromium, live_server, vendored_assets, path):
    page, log, blocked = _open_offline(chromium, live_server, path)
    _assert_clean(log, blocked, path)
    assert page.title().endswith(TITLE)
    # Bootstrap's CSS is applied (its container has a max width on a 1920-pixel window)
    assert page.evaluate("getComputedStyle(document.querySelector('.container')).maxWidth") != "none"
    page.close()


def test_item_page_draws_its_feature_and_shows_nulls_as_empty(chromium, live_server, vendored_assets):
    building = m.Building.objects.order_by("id").first()
    path = f"/ogc/collections/buildings/items/{building.id}?f=html"
    page, log, blocked = _open_offline(chromium, live_server, path)
    wait_for(page, "document.querySelectorAll('#item-map path.leaflet-interactive').length > 0")
    _assert_clean(log, blocked, path)
    assert page.title().endswith(TITLE) and page.title() != TITLE
    cells = page.eval_on_selector_all("table td", "cells => cells.map(c => c.textContent.trim())")
    assert "None" not in cells and "null" not in cells
    page.close()


def test_openapi_page_resolves_offline(chromium, live_server, vendored_assets):
    page, log, blocked = _open_offline(chromium, live_server, "/ogc/openapi?f=html")
    wait_for(page, "document.querySelectorAll('.opblock').length > 10", timeout_s=20)
    page.wait_for_load_state("networkidle")
    _assert_clean(log, blocked, "/ogc/openapi")
    assert page.title().endswith(TITLE)
    assert not page.query_selector_all(".errors-wrapper"), page.inner_text(".errors-wrapper")
    page.close()


def test_item_page_shows_null_as_empty_and_escapes(live_server):
    grid = m.Grid.objects.filter(level=3).order_by("id").first()
    html = requests.get(f"{live_server}/ogc/collections/grids/items/{grid.id}", params={"f": "html"}, timeout=30).text
    assert ">None<" not in html and "unpkg.com" not in html and "cdnjs" not in html
    assert f"<title>{grid.name}" in html or f"<title>{grid.code}" in html or f"<title>{grid.id}" in html


def test_openapi_document_resolves_with_no_outside_host(live_server):
    import json

    document = requests.get(f"{live_server}/ogc/openapi", params={"f": "json"}, timeout=30).json()
    refs = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs and all(ref.startswith("#/") for ref in refs), sorted({r for r in refs if not r.startswith("#/")})
    for ref in set(refs):  # each one lands on something
        node = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert node, ref
    assert "schemas.opengis.net" not in json.dumps([r for r in refs])
