"""The phone page /m/ in headless Chromium at 390×844: sign in, one's own grid and tasks, accept, arrive, handle with
a photo, the big screen's API showing it; then the same with the network cut in the middle and an answer lost on
the way back: nothing lost, nothing applied twice (checked in the database).

A server of its own (photos in a temporary folder); cases are made through the services and dispatched to the
worker bound to the test's grid-worker account, as a commander would.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import requests
from browser import chromium_executable  # noqa: F401  (the module's fixtures need Chromium)

from core.identity import Identity
from gis import models as m
from gis.accounts.services import grid_worker_bind
from gis.cases import services as cases
from gis.incidents.services import incident_create

pytestmark = pytest.mark.slow

COMMANDER = Identity(role="commander", username="cmd.phone.browser")
FIRST_LOAD_LIMIT = 300 * 1024  # bytes transferred on first load, map tiles not counted (the budget)
READY = "window.onemapPhone && window.onemapPhone.ready === true"
TIMEOUT_S = 30


@pytest.fixture
def bound(accounts, own_grid):
    worker = m.GridWorker.objects.filter(grid=own_grid).order_by("code").first()
    before = worker.on_duty
    grid_worker_bind(username=accounts["worker"].username, worker_code=worker.code)
    m.GridWorker.objects.filter(pk=worker.pk).update(on_duty=True)
    yield worker
    m.GridWorker.objects.filter(pk=worker.pk).update(user=None, on_duty=before)


@pytest.fixture
def dispatched(demo_db):
    made = []

    def make(grid, worker, title: str, category: str = "sanitation") -> m.Case:
        point = grid.geom.point_on_surface
        incident = incident_create(lon=point.x, lat=point.y, category=category, source="staff", title=title,
                                   code=f"INC-PHONE-B-{grid.code}-{len(made)}")
        made.append(incident.id)
        case = cases.case_open(incident_id=incident.id)
        cases.case_accept(case_id=case.id, actor=COMMANDER)
        cases.case_file(case_id=case.id, actor=COMMANDER)
        return cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=worker.id)

    yield make
    m.Incident.objects.filter(id__in=made).delete()


@pytest.fixture
def phone_server(server_process, tmp_path, vendored_assets):
    photos = tmp_path / "photos"
    server = server_process("mobile-browser", env={"ONEMAP_PHOTO_DIR": str(photos)})
    return server.base_url, photos


@pytest.fixture
def phone(chromium, phone_server, own_grid):
    """A phone-sized page (390×844, touch, location granted inside the grid) that records what it loads."""
    base_url, _ = phone_server
    spot = own_grid.geom.point_on_surface
    context = chromium.new_context(
        base_url=base_url, viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
        has_touch=True, locale="zh-CN", timezone_id="Asia/Shanghai", service_workers="block",
        geolocation={"latitude": spot.y, "longitude": spot.x, "accuracy": 10}, permissions=["geolocation"])
    page = context.new_page()
    record = {"finished": [], "page_errors": [], "console_errors": [], "urls": []}
    page.on("requestfinished", lambda request: record["finished"].append(request))
    page.on("request", lambda request: record["urls"].append(request.url))
    page.on("pageerror", lambda error: record["page_errors"].append(str(error)))
    page.on("console", lambda message: record["console_errors"].append(message.text)
            if message.type == "error" else None)
    yield page, context, record
    context.close()


def _jpeg() -> bytes:
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    cv2.putText(image, "done", (40, 240), cv2.FONT_HERSHEY_SIMPLEX, 4, (0, 255, 0), 8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _wait(predicate, what: str, timeout_s: float = TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _steps(case_id: int) -> list[str]:
    return list(m.CaseEvent.objects.filter(case_id=case_id).order_by("id").values_list("action", flat=True))


def _press(page, case_id: int, action: str) -> None:
    page.locator(f'[data-case-id="{case_id}"] button[data-action="{action}"]').click()


def _handle_with_photo(page, case_id: int, note: str) -> None:
    _press(page, case_id, "handle")
    page.locator("#sheet textarea").fill(note)
    page.locator("#sheet input[type=file]").set_input_files(
        files=[{"name": "site.jpg", "mimeType": "image/jpeg", "buffer": _jpeg()}])
    page.locator("#sheet-submit").click()


def _screen_case(base_url: str, accounts, case: m.Case) -> dict:
    answer = requests.get(f"{base_url}/screen/api/incidents/{case.incident_id}", auth=accounts["commander"].auth,
                          timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["case"]


def test_a_grid_worker_signs_in_and_handles_tasks_online_and_through_a_network_cut(
        phone, phone_server, accounts, bound, own_grid, other_grid, dispatched, artifacts_dir):
    page, context, record = phone
    base_url, photo_dir = phone_server
    online = dispatched(own_grid, bound, "井盖缺失 <img src=x onerror=window.pwned=1>")
    offline = dispatched(own_grid, bound, "楼道堆物")
    neighbour = dispatched(other_grid, m.GridWorker.objects.filter(grid=other_grid).first(), "邻格的事")
    keys_before = m.IdempotentRequest.objects.order_by("-id").values_list("id", flat=True).first() or 0

    # sign in with username and token; the first load stays under the budget
    page.goto("/m/")
    page.locator("input[name=username]").fill(accounts["worker"].username)
    page.locator("input[name=token]").fill(accounts["worker"].token)
    page.locator("#signin-form button[type=submit]").click()
    page.wait_for_function(READY + " && window.onemapPhone.live === 'open'", timeout=TIMEOUT_S * 1000)
    page.wait_for_timeout(500)
    loaded = [r for r in record["finished"] if "/m/events" not in r.url and "/tiles/" not in r.url]
    transferred = sum(max(0, s["responseBodySize"]) + max(0, s["responseHeadersSize"])
                      for s in (r.sizes() for r in loaded))
    print(f"\nfirst load: {transferred / 1024:.1f} KiB in {len(loaded)} responses (budget 300 KB)")
    assert transferred < FIRST_LOAD_LIMIT, [(r.url, r.sizes()["responseBodySize"]) for r in loaded]
    assert all(url.startswith(base_url) or url.startswith("data:") for url in record["urls"]), record["urls"]

    # only their grid and its tasks; a title is text, never markup
    shown = page.evaluate("window.onemapPhone.tasks.map(t => t.id)")
    assert online.id in shown and offline.id in shown and neighbour.id not in shown
    assert set(m.Case.objects.filter(id__in=shown).values_list("incident__grid__code", flat=True)) == {own_grid.code}
    assert page.locator("#grid-name").text_content() == own_grid.name
    card = page.locator(f'[data-case-id="{online.id}"]')
    assert "<img src=x" in card.text_content() and card.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(artifacts_dir / "mobile-390x844.png"))

    # online: accept, arrive, handle with a photo
    _press(page, online.id, "acknowledge")
    _wait(lambda: m.Case.objects.get(pk=online.id).state == "acknowledged", "the acceptance")
    page.wait_for_selector(f'[data-case-id="{online.id}"] button[data-action="arrive"]')
    _press(page, online.id, "arrive")
    _wait(lambda: "arrive" in _steps(online.id), "the arrival")
    _handle_with_photo(page, online.id, "已补装井盖")
    _wait(lambda: m.Case.objects.get(pk=online.id).state == "handled", "the handling")
    assert _steps(online.id)[-3:] == ["acknowledge", "arrive", "handle"]
    assert not record["page_errors"] and not record["console_errors"], record
    shown_on_screen = _screen_case(base_url, accounts, online)
    assert shown_on_screen["state"] == "handled"
    handled = shown_on_screen["history"][-1]
    assert handled["action"] == "handle" and handled["data"]["note"] == "已补装井盖"
    assert len(handled["data"]["photos"]) == 1 and (photo_dir / f"{handled['data']['photos'][0]}.jpg").is_file()
    assert shown_on_screen["history"][-2]["position"] is not None

    # the network cut: three actions queued, none sent
    context.set_offline(True)
    page.wait_for_timeout(300)
    _press(page, offline.id, "acknowledge")
    page.wait_for_selector(f'[data-case-id="{offline.id}"] button[data-action="arrive"]')
    _press(page, offline.id, "arrive")
    _handle_with_photo(page, offline.id, "已清理楼道")
    page.wait_for_function("window.onemapPhone.pending === 3", timeout=TIMEOUT_S * 1000)
    page.wait_for_timeout(1500)
    assert _steps(offline.id) == ["report", "accept", "file", "dispatch"]
    assert "离线" in page.locator("#net").text_content()
    page.screenshot(path=str(artifacts_dir / "mobile-390x844-offline.png"))
    assert page.locator(f'[data-case-id="{offline.id}"] .badge.pending').count() == 1

    # back online, but the first answer is lost on its way to the phone: applied, then sent again
    lost = []

    def lose_first_answer(route):
        if not lost:
            lost.append(route.fetch().status)  # the server applies it ...
            route.abort("connectionreset")  # ... and the phone never hears
        else:
            route.continue_()

    page.route(f"**/api/cases/{offline.id}/acknowledge", lose_first_answer)
    context.set_offline(False)
    page.wait_for_function("window.onemapPhone.pending === 0", timeout=60_000)
    assert lost == [200]
    _wait(lambda: m.Case.objects.get(pk=offline.id).state == "handled", "the queued handling")
    assert _steps(offline.id) == ["report", "accept", "file", "dispatch", "acknowledge", "arrive", "handle"]
    assert page.evaluate("window.onemapPhone.replayed") >= 1 and page.evaluate("window.onemapPhone.rejected") == []
    keys = m.IdempotentRequest.objects.filter(user__username=accounts["worker"].username, id__gt=keys_before)
    assert list(keys.values_list("status", flat=True)) == [200] * 6  # one per action, online and offline
    assert _screen_case(base_url, accounts, offline)["state"] == "handled"
    assert len(list(photo_dir.glob("*.jpg"))) == 1  # the same photo both times: one file

    # live: a new dispatch reaches the open page over the feed, without a reload
    fresh = dispatched(own_grid, bound, "新派遣：共享单车乱停")
    page.wait_for_selector(f'[data-case-id="{fresh.id}"]', timeout=TIMEOUT_S * 1000)
    assert not record["page_errors"], record["page_errors"]


def test_a_wrong_token_is_refused_on_the_sign_in_form(phone, accounts, bound):
    page, _, record = phone
    page.goto("/m/")
    page.locator("input[name=username]").fill(accounts["worker"].username)
    page.locator("input[name=token]").fill("om_not-a-token-at-all")
    page.locator("#signin-form button[type=submit]").click()
    page.wait_for_function("document.getElementById('signin-error').textContent.length > 0",
                           timeout=TIMEOUT_S * 1000)
    assert "登录失败" in page.locator("#signin-error").text_content()
    assert page.evaluate("window.onemapPhone.signedIn") is False
