"""Stored script, tried in a real browser: attack strings in every free-text field, every HTML page opened, no script runs.

Each attack string, if it ever ran, sets ``window.__onemap_xss``. The strings go into
every free-text field of every layer the OGC API lets someone write (through the API,
as its users would) and into the names of the other things the pages show (cameras,
service points, party organisations and activities). Then the OGC pages (pygeoapi's),
the landing page and the big screen (with every tooltip opened, the incident panel
opened and a live event received) are opened in headless Chromium, offline as on a
command-centre intranet.
"""

from __future__ import annotations

import itertools

import pytest
from attacks import XSS_MARK, XSS_STRINGS, write
from browser import open_page

from gis import models as m
from layers.catalogue import LAYERS

EDITABLE = [layer for layer in LAYERS if layer.editing]
# what else the pages show by name, written by imports and loaders rather than the API
NAMED = ((m.Camera, "name"), (m.ServicePoint, "name"), (m.PartyOrganization, "name"), (m.PartyActivity, "title"))

_PROBE = f"""() => ({{
    ran: window.{XSS_MARK} === undefined ? null : window.{XSS_MARK},
    injected: document.querySelectorAll('img[src="x"], svg[onload], [onerror], script:not([src])').length
        - document.querySelectorAll('script:not([src])').length
}})"""


def _free_text(layer) -> list[str]:
    """The layer's creatable string properties that take any text (not a choice)."""
    fields = []
    for name in layer.editing.create_fields:
        column = layer.column(name)
        if column.type == "string" and not column.choices:
            fields.append(name)
    return fields


def _feature(layer, point, values: dict) -> dict:
    lon, lat = point.x, point.y
    if layer.geometry_type == "Point":
        geometry = {"type": "Point", "coordinates": [lon, lat]}
    else:
        side = 0.00004
        geometry = {"type": "Polygon", "coordinates": [[[lon, lat], [lon + side, lat], [lon + side, lat + side],
                                                        [lon, lat + side], [lon, lat]]]}
    properties = dict(values)
    for name in layer.editing.create_fields:  # a valid value for each choice the layer requires
        column = layer.column(name)
        if column.choices and name not in properties and name not in ("status",):
            properties[name] = "sanitation" if name == "category" else column.choices[0]
    return {"type": "Feature", "geometry": geometry, "properties": properties}


@pytest.fixture
def planted(live_server, accounts):
    """Attack strings in every free-text field of every writable layer (through the API) and in every shown name."""
    strings = itertools.cycle(XSS_STRINGS)
    grid = m.Grid.objects.filter(level=3).order_by("code").first()
    point = grid.geom.point_on_surface
    created: dict[str, list[int]] = {}
    for layer in EDITABLE:
        fields = _free_text(layer)
        for _ in range(2 if fields else 1):
            feature = _feature(layer, point, {name: next(strings) for name in fields})
            response = write("POST", f"{live_server}/ogc/collections/{layer.id}/items", accounts["administrator"].auth,
                             feature)
            assert response.status_code == 201, (layer.id, response.text)
            created.setdefault(layer.id, []).append(int(response.headers["Location"].rsplit("/", 1)[1]))
    renamed = []
    for model, field in NAMED:
        row = model.objects.filter(**({"grid": grid} if hasattr(model, "grid") else {})).first() \
            or model.objects.first()
        renamed.append((model, row.pk, field, getattr(row, field)))
        model.objects.filter(pk=row.pk).update(**{field: next(strings)[: model._meta.get_field(field).max_length]})
    yield created, grid
    for model, pk, field, value in renamed:
        model.objects.filter(pk=pk).update(**{field: value})
    for layer in EDITABLE:
        model = {"incidents": m.Incident, "parking_spots": m.ParkingSpot, "no_parking_zones": m.NoParkingZone}[layer.id]
        model.objects.filter(pk__in=created.get(layer.id, [])).delete()


def _offline(page, base_url: str) -> None:
    """Requests to anywhere but the server fail, as on an intranet (pygeoapi's pages ask CDNs for their assets)."""
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base_url)
               else route.abort())


def _assert_nothing_ran(page, where: str, dialogs: list) -> None:
    probe = page.evaluate(_PROBE)
    assert probe["ran"] is None, f"an attack string ran on {where}: {probe}"
    assert probe["injected"] == 0, f"attack markup became elements on {where}: {probe}"
    assert not dialogs, f"a dialog opened on {where}: {dialogs}"


def test_no_attack_string_runs_on_any_ogc_page(chromium, live_server, accounts, planted):
    created, _ = planted
    page, _ = open_page(chromium, base_url=live_server, credentials=accounts["administrator"].auth)
    dialogs: list = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _offline(page, live_server)
    pages = ["/ogc/?f=html", "/ogc/collections?f=html", "/", "/ogc/conformance?f=html"]
    for layer in EDITABLE:
        base = f"/ogc/collections/{layer.id}"
        sort = f"&sortby=-{layer.time_field}" if layer.time_field else ""
        pages += [f"{base}?f=html", f"{base}/items?f=html&limit=10000{sort}", f"{base}/queryables?f=html"]
        pages += [f"{base}/items/{pk}?f=html" for pk in created.get(layer.id, [])]
    for name in ("cameras", "service_points", "party_orgs"):
        pages.append(f"/ogc/collections/{name}/items?f=html&limit=10000")
    try:
        for path in pages:
            response = page.goto(path, wait_until="load")
            assert response.status == 200, (path, response.status)
            page.wait_for_timeout(50)  # onerror handlers of broken images run after load
            _assert_nothing_ran(page, path, dialogs)
    finally:
        page.context.close()


@pytest.fixture
def dead_letters(demo_db):
    """A dead notification per attack string, the string as its recipient (and so in its error), as the outbox
    leaves one: a DingTalk robot nobody configured refuses it for good on its first attempt."""
    from gis.notifications.delivery import deliver
    from gis.notifications.models import Notification
    from gis.notifications.services import notify

    keys = [f"test:xss-dead:{n}:{id(XSS_STRINGS)}" for n in range(len(XSS_STRINGS))]
    for key, attack in zip(keys, XSS_STRINGS):
        notify(key=key, channel="dingtalk", recipient=attack, subject=("case", None), payload={"title": attack})
        assert deliver(notification_id=Notification.objects.get(key=key).id).state == "dead"
    yield list(Notification.objects.filter(key__in=keys).values_list("id", "recipient"))
    Notification.objects.filter(key__in=keys).delete()


def test_no_attack_string_runs_on_the_big_screen(screen_page, planted, dead_letters, accounts, live_server):
    created, grid = planted
    page, log = screen_page(f"/screen/?grid={grid.code}")
    dialogs: list = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.wait_for_function("window.onemapScreen && window.onemapScreen.ready", timeout=60_000)
    opened = page.evaluate("""() => {
        let n = 0;
        onemapScreen.map.eachLayer(l => {
            if (!l.getTooltip || !l.getTooltip()) return;
            const at = l.getLatLng ? l.getLatLng() : l.getBounds().getCenter();
            l.openTooltip(at); n += 1;
        });
        return n;
    }""")
    assert opened > 0, "no tooltip to open on the screen"
    page.wait_for_timeout(300)  # a broken image's onerror would run by now
    _assert_nothing_ran(page, "the screen's tooltips", dialogs)
    incident = created["incidents"][0]
    # a live change puts the incident in the event list and on the map; opening it shows its panel
    assert write("PATCH", f"{live_server}/ogc/collections/incidents/items/{incident}", accounts["commander"].auth,
                 {"type": "Feature", "properties": {"status": "dispatched"}}).status_code == 204
    marker = page.wait_for_selector(f'div.om-incident[data-incident-id="{incident}"]', timeout=20_000)
    marker.dispatch_event("click")
    page.wait_for_selector("#om-incident-panel .om-body h2", timeout=20_000)
    page.wait_for_selector(f'#om-event-list li[data-incident-id="{incident}"]', timeout=20_000)
    page.wait_for_timeout(300)  # a broken image's onerror would run by now
    _assert_nothing_ran(page, "the screen's incident panel and event list", dialogs)
    title = m.Incident.objects.get(pk=incident).title
    assert title in page.inner_text("#om-incident-panel .om-body h2")  # shown, as text
    assert title in page.inner_text(f'#om-event-list li[data-incident-id="{incident}"]')
    for notification_id, recipient in dead_letters:  # the dead letters' recipients and errors, shown as text
        row = page.wait_for_selector(f'#om-dead-list li[data-notification-id="{notification_id}"]', timeout=20_000)
        assert recipient in row.inner_text()
    _assert_nothing_ran(page, "the screen's dead letters", dialogs)
