"""One wrapper for every view of ``/report/``: methods, the same-origin check on writes, staff, errors.

The resident's endpoints are anonymous and use no cookies, so there is no session to ride
on; yet a page elsewhere could still make a visitor's browser post reports from their
address, and a moderator's browser resends its Basic credentials to this origin on its
own. So every POST must carry the header ``X-Requested-With: onemap-report`` (a page on
another origin cannot add a header without a CORS preflight, which this server never
grants, and an HTML form cannot add one at all), and is refused when the browser says it
came from another site (``Sec-Fetch-Site``) or names another ``Origin``.

Domain errors map to statuses in one table (``STATUSES``); a client's input never makes a 5xx.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from string import Template

from django.http import HttpRequest, HttpResponse, JsonResponse

from api.middleware import cross_site
from api.residents.limits import JSON_BODY_BYTES
from core.roles import SCREEN_ROLES

TEMPLATES = Path(__file__).resolve().parent / "templates"
WRITE_HEADER = ("X-Requested-With", "onemap-report")
STAFF_ROLES = SCREEN_ROLES  # administrators and commanders moderate
# the page's own assets only; the config is a JSON data block, never run as script
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")


class Refusal(Exception):
    """A request this face refuses before (or instead of) the domain: ``status`` and a sentence."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


def _statuses():
    from gis.cases.services import CaseRefused
    from gis.reports.services import ReportLimited, ReportNotFound
    from gis.services import ServiceError

    # most specific first: every one of these is a ServiceError
    return ((ReportLimited, 429), (ReportNotFound, 404), (CaseRefused, 409), (ServiceError, 400))


def resident_view(*methods: str, staff: bool = False, html: bool = False, what: str = "this page"):
    """Only ``methods`` (405 otherwise); POSTs same-origin; ``staff``: administrators and commanders only.

    The view gets the request, the caller's identity and the URL's arguments. Errors are JSON
    ``{"status", "error"}`` (a small page when ``html``), with Retry-After on a 429.
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs):
            from api.auth import AuthError, identity_for_request, require_role
            from gis.reports.services import ReportLimited

            try:
                if staff:
                    identity = require_role(request, STAFF_ROLES, what=what)
                else:
                    identity = identity_for_request(request)
                if request.method not in methods:
                    raise Refusal(405, f"{request.method} is not allowed here; use {' or '.join(methods)}",
                                  {"Allow": ", ".join(methods)})
                if request.method == "POST":
                    check_same_origin(request)
                return view(request, identity, **kwargs)
            except AuthError as exc:
                return error_response(exc.status, str(exc), exc.headers, html=html)
            except Refusal as exc:
                return error_response(exc.status, str(exc), exc.headers, html=html)
            except Exception as exc:
                for kind, status in _statuses():
                    if isinstance(exc, kind):
                        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, ReportLimited) else {}
                        return error_response(status, str(exc), headers, html=html)
                raise

        return wrapper

    return decorate


def check_same_origin(request: HttpRequest) -> None:
    """403 unless the write came from a page of this origin (see the module's docstring)."""
    name, value = WRITE_HEADER
    if request.headers.get(name) != value:
        raise Refusal(403, f"a write here must carry the header '{name}: {value}' (the /report/ page sends it)")
    why = cross_site(request)
    if why is not None:
        raise Refusal(403, f"a write here must come from this site's own page: {why}")


def json_response(data, status: int = 200, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse(data, status=status, safe=False, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def error_response(status: int, message: str, headers: dict | None = None, *, html: bool = False) -> HttpResponse:
    if html:
        from xml.sax.saxutils import escape

        body = page("error.html", status=str(status), message=escape(message))
        response = HttpResponse(body, status=status, content_type="text/html; charset=utf-8")
        response["Cache-Control"] = "no-store"
        for key, value in (headers or {}).items():
            response[key] = value
        return response
    return json_response({"status": status, "error": message}, status, headers)


def page(name: str, **values: str) -> str:
    """A template of ``templates/`` filled with ``string.Template`` (``$name``); values are escaped by the caller."""
    return _template(name).substitute(values)


def page_response(body: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Cache-Control"] = "no-store"
    return response


def config_block(config: dict) -> str:
    """``config`` as the text of a ``<script type="application/json">`` block (no ``</`` can end it)."""
    return json.dumps(config, ensure_ascii=False).replace("</", "<\\/")


@functools.cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def json_body(request: HttpRequest) -> dict:
    """The JSON object of a small body; 413 past ``JSON_BODY_BYTES``, 400 for anything but an object."""
    raw = request.body
    if len(raw) > JSON_BODY_BYTES:
        raise Refusal(413, f"the body is {len(raw):,} bytes; at most {JSON_BODY_BYTES:,} are taken")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Refusal(400, f"the body is not JSON: {str(exc)[:120]}") from None
    if not isinstance(body, dict):
        raise Refusal(400, "the body must be a JSON object")
    return body


def text_field(body: dict, name: str, default: str | None = None) -> str:
    """A text member of a JSON body (400 when missing without a default, or not text)."""
    value = body.get(name, default)
    if value is None:
        raise Refusal(400, f"{name} is required")
    if not isinstance(value, str):
        raise Refusal(400, f"{name} must be text")
    return value
