"""Security headers on every response; private, uncached answers to requests that carried credentials."""

from __future__ import annotations

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
            patch_vary_headers(response, ("Authorization",))
        return response


def security_headers(headers: dict[str, str], *, authorised: bool) -> list[tuple[str, str]]:
    """The same headers for a response made outside Django (:mod:`api.fastpath`): ``headers`` plus ours."""
    merged = dict(_ALWAYS)
    if authorised:
        merged.update((_AUTHORISED, ("Vary", "Authorization")))
    merged.update(headers)
    return list(merged.items())
