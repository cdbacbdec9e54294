"""The landing page, the error pages and the favicon: the product's title, a viewport, counts the visitor may see."""

from __future__ import annotations

import re

import pytest
import requests

TITLE = "社区一张图 · Community One Map"
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


def _title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


def test_landing_page_orients_and_counts_what_the_visitor_may_see(live_server, accounts):
    html = requests.get(live_server + "/", timeout=30).text
    assert VIEWPORT in html and _title(html) == TITLE
    for surface in ("/screen/", "/m/", "/report/", "/ogc/", "/wfs", "/ogc/tilejson.json", "/open311/v2/"):
        assert f">{surface}</a>" in html, surface
    assert "public cameras" not in html
    assert "<code>cameras</code>" not in html and "Signing in adds" in html  # cameras are for signed-in roles
    analyst = requests.get(live_server + "/", auth=accounts["analyst"].auth, timeout=30).text
    assert "<code>cameras</code>" in analyst and "<code>care_subjects</code>" not in analyst


@pytest.mark.parametrize("path, status", [("/no-such-page", 404), ("/ogc/collections/nope/items?f=html", 404)])
def test_error_pages_carry_the_viewport_and_title(live_server, path, status):
    response = requests.get(live_server + path, headers={"Accept": "text/html"}, timeout=30)
    assert response.status_code == status
    if response.headers["Content-Type"].startswith("text/html"):
        assert VIEWPORT in response.text and _title(response.text).endswith(TITLE)


def test_favicon_answers(live_server):
    response = requests.get(live_server + "/favicon.ico", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/svg+xml"
    assert requests.get(live_server + "/static/onemap/logo.svg", timeout=30).status_code == 200


def test_html_pages_have_the_product_title(live_server):
    for path in ("/ogc/?f=html", "/ogc/collections?f=html", "/ogc/openapi?f=html", "/ogc/collections/grids/items?f=html"):
        html = requests.get(live_server + path, timeout=30).content.decode("utf-8")  # pygeoapi sends no charset
        assert VIEWPORT in html and _title(html).endswith(TITLE), path
