"""Who may ask the big screen, and how a refusal is answered.

Every URL of the screen is a :func:`screen_view`: GET/HEAD only, for ``SCREEN_ROLES``
(administrators and commanders) unless it says otherwise; a refusal is a
:class:`ScreenError`, answered as JSON, or as a page for the page itself.
"""

from __future__ import annotations

import functools
from pathlib import Path
from xml.sax.saxutils import escape

from django.http import HttpRequest, HttpResponse, JsonResponse

from core.roles import SCREEN_ROLES

TEMPLATES = Path(__file__).resolve().parent / "templates"


class ScreenError(Exception):
    """A request the screen refuses; ``str(exc)`` says what to change."""

    def __init__(self, message: str, *, status: int, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


def screen_view(*, html: bool = False, roles: frozenset[str] = SCREEN_ROLES, what: str = "the command-centre screen"):
    """GET/HEAD only, for ``roles``; errors as JSON (or as a page when ``html``)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            try:
                if request.method not in ("GET", "HEAD"):
                    raise ScreenError(f"{request.method} is not allowed here; use GET",
                                      status=405, headers={"Allow": "GET, HEAD"})
                identity = screen_identity(request, roles=roles, what=what)
                return view(request, identity, *args, **kwargs)
            except ScreenError as exc:
                return _error_response(exc, html=html)

        return wrapper

    return decorate


def screen_identity(request: HttpRequest, *, roles: frozenset[str] = SCREEN_ROLES,
                    what: str = "the command-centre screen"):
    """The caller if their role is one of ``roles``; otherwise ScreenError 401 (with a Basic challenge), 403 or 429."""
    from api.auth import AuthError, require_role

    try:
        return require_role(request, roles, what=what)
    except AuthError as exc:
        raise ScreenError(str(exc), status=exc.status, headers=exc.headers) from None


def _error_response(exc: ScreenError, *, html: bool) -> HttpResponse:
    if html:
        body = page_template("error.html").format(status=exc.status, message=escape(str(exc)))
        response = HttpResponse(body, status=exc.status, content_type="text/html; charset=utf-8")
    else:
        response = JsonResponse({"status": exc.status, "error": str(exc)}, status=exc.status,
                                json_dumps_params={"ensure_ascii": False})
    for key, value in exc.headers.items():
        response[key] = value
    return response


@functools.cache
def page_template(name: str) -> str:
    """An HTML template of the screen's (``templates/``), filled with ``str.format`` and escaped values."""
    return (TEMPLATES / name).read_text(encoding="utf-8")


def incident_number(raw: str) -> int:
    """The incident id of a URL; anything but a whole number is a 404, like a missing incident."""
    if not raw.isdigit() or len(raw) > 18:
        raise ScreenError(f"incident id must be a whole number, got {raw!r}", status=404)
    return int(raw)
