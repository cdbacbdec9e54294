"""Security headers on every response; private, uncached answers to requests that carried credentials;
no write from another site's page on the strength of credentials the browser remembered."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.utils.cache import patch_vary_headers

_ALWAYS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
# one user's answer must not be served to another from a shared cache
_AUTHORISED = ("Cache-Control", "private, no-store")


class SecurityHeadersMiddleware:
    """Adds the headers in ``_ALWAYS`` (keeping any a view set) and, for authorised requests, no caching."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        headers = response.headers
        for name, value in _ALWAYS:
            headers.setdefault(name, value)
        if "HTTP_AUTHORIZATION" in request.META:
            headers.setdefault(*_AUTHORISED)
        # the same URL answers differently with other credentials: an anonymous answer a cache keeps
        # (public, max-age) must never be handed to a signed-in request, nor the other way round
        patch_vary_headers(response, ("Authorization",))
        return response


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_site(request) -> str | None:
    """Why a request comes from another site's page (``Sec-Fetch-Site``, else ``Origin``), or None.

    A client that is not a browser (QGIS, curl, a device) sends neither, and is not refused.
    """
    fetched_from = request.headers.get("Sec-Fetch-Site")
    if fetched_from not in (None, "same-origin", "none"):
        return f"the browser says it came from a page of another site ({fetched_from})"
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.get_host():
        return f"it came from a page of {origin[:100]!r}"
    return None


class CrossSiteWriteMiddleware:
    """403 for a write (POST, PUT, PATCH, DELETE) from another site's page that carries ambient credentials.

    A browser resends HTTP Basic credentials it remembers (and cookies) with a form another
    site submits; without this, a page elsewhere could take a case action or replay a
    notification in a signed-in commander's name. Writes without credentials (a resident's
    report, Open311 with its key in the body) are the views' own business.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in _SAFE_METHODS and ("HTTP_AUTHORIZATION" in request.META or request.COOKIES):
            why = cross_site(request)
            if why is not None:
                from django.http import JsonResponse

                return JsonResponse({"status": 403, "error": f"a write with your credentials was refused: {why}"},
                                    status=403)
        return self.get_response(request)


def security_headers(headers: dict[str, str], *, authorised: bool) -> list[tuple[str, str]]:
    """The same headers for a response made outside Django (:mod:`api.fastpath`): ``headers`` plus ours."""
    merged = dict(_ALWAYS)
    merged["Vary"] = "Authorization"  # as SecurityHeadersMiddleware: answers differ by credentials
    if authorised:
        merged.update((_AUTHORISED,))
    merged.update(headers)
    return list(merged.items())


class DatabaseOutageMiddleware:
    """A request that fails because the database cannot be reached gets 503 with ``Retry-After``, not a 500.

    The OGC API maps these itself (as OGC exception JSON); this covers every other page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.http import HttpResponse, JsonResponse

        from layers.errors import ServiceUnavailable, from_database

        error = from_database(exception)
        if not isinstance(error, ServiceUnavailable):
            return None
        if "text/html" in request.headers.get("Accept", ""):
            response = HttpResponse(_OUTAGE_PAGE, status=503, content_type="text/html; charset=utf-8")
        else:
            response = JsonResponse({"status": 503, "error": error.description}, status=503)
        response["Retry-After"] = error.headers["Retry-After"]
        response["Cache-Control"] = "no-store"
        return response


_OUTAGE_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>社区一张图 · 503</title></head>
<body><main><h1>503</h1><p>数据库暂时无法连接，请稍后重试。The database cannot be reached right now; try again shortly.</p>
</main></body></html>
"""
