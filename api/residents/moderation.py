"""The moderation queue at ``/report/moderation``: administrators and commanders only.

Nothing a resident wrote is public before a moderator publishes it; here staff publish,
hide, redact the text, remove a photo or ban the sender (every trace the report carries:
device, address, phone, without ever seeing their values). The history of each report's
moderation is shown here only. Writes go through :mod:`gis.reports.services`.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from api.residents.access import (
    Refusal,
    config_block,
    json_body,
    json_response,
    page,
    page_response,
    resident_view,
    text_field,
)

STATES = ("pending", "public", "hidden")
ACTIONS = ("publish", "hide", "redact", "remove_photo", "ban")
WHAT = "the moderation of residents' reports"


@resident_view("GET", "HEAD", staff=True, html=True, what=WHAT)
def moderation_page(request: HttpRequest, identity) -> HttpResponse:
    """The queue's page (the browser asks for the token once; its script reads the JSON below)."""
    config = {"urls": {"queue": "/report/api/moderation", "act": "/report/api/moderation/{code}/{action}"},
              "states": list(STATES), "writeHeader": ["X-Requested-With", "onemap-report"]}
    return page_response(page("moderation.html", config=config_block(config)))


@resident_view("GET", "HEAD", staff=True, what=WHAT)
def queue(request: HttpRequest, identity) -> HttpResponse:
    """Reports in one moderation state (``state``, default pending), oldest first, with their history."""
    from gis.reports.selectors import moderation_queue

    state = request.GET.get("state") or "pending"
    if state not in STATES:
        raise Refusal(400, f"state must be one of {', '.join(STATES)}; got {state[:40]!r}")
    limit = request.GET.get("limit") or "100"
    if not limit.isdigit() or not 1 <= int(limit) <= 500:
        raise Refusal(400, f"limit must be a whole number from 1 to 500; got {limit[:20]!r}")
    reports = moderation_queue(state=state, limit=int(limit))
    for report in reports:  # staff see every photo, addressed by the report's id like everyone's
        report["photos"] = [{"name": p.split("/", 1)[1], "url": f"/report/photos/{p}"} for p in report["photos"]]
    return json_response({"state": state, "reports": reports})


@resident_view("POST", staff=True, what=WHAT)
def act(request: HttpRequest, identity, code: str, action: str) -> HttpResponse:
    """One moderator's step, JSON ``{reason?, text? (redact), photo? (remove_photo)}``; the report's new state."""
    from gis.reports.services import ban_from_report, report_moderate

    if action not in ACTIONS:
        raise Refusal(404, f"there is no moderation action {action[:40]!r}; the actions are {', '.join(ACTIONS)}")
    body = json_body(request)
    reason = text_field(body, "reason", "")
    if action == "ban":
        bans = ban_from_report(code=code, actor=identity, reason=reason)
        return json_response({"code": code, "moderation": "hidden", "banned": [b.kind for b in bans]})
    text = text_field(body, "text") if action == "redact" else None
    photo = text_field(body, "photo") if action == "remove_photo" else None
    report = report_moderate(code=code, actor=identity, action=action, reason=reason, text=text, photo=photo)
    return json_response({"code": report.code, "moderation": report.moderation, "description": report.description,
                          "photos": list(report.photos)})
