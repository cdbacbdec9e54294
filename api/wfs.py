"""WFS 2.0 with transactions at ``/wfs``: key-value pairs on GET, XML documents on POST.

Thin: the caller is authenticated as on the OGC API (HTTP Basic with a personal access
token), the request is read by :mod:`layers.wfs`, and every error is an OWS
ExceptionReport — a client's XML is never answered with a 5xx. See ``docs/wfs.md``.
"""

from __future__ import annotations

import functools
import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from layers.errors import InvalidBody, InvalidParameter, NotAuthenticated, OGCError, PayloadTooLarge, from_database

_log = logging.getLogger("onemap.wfs")
XML = "text/xml; charset=utf-8"
GML = "application/gml+xml; version=3.2"
_OPERATIONS = ("GetCapabilities", "DescribeFeatureType", "GetFeature", "Transaction")
# OWS exception codes for the errors the layers raise (the others keep their own code)
_OWS_CODES = {"InvalidRequestBody": "OperationParsingFailed", "InvalidParameterValue": "InvalidParameterValue"}


@csrf_exempt  # token clients send no CSRF cookie; /wfs never uses session authentication
def service(request: HttpRequest) -> HttpResponse:
    """Every WFS operation, at one URL."""
    try:
        from api.ogc import _identity

        identity = _identity(request)
        if request.method in ("GET", "HEAD"):
            return _kvp(request, identity)
        if request.method == "POST":
            return _xml(request, identity)
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
            response["Allow"] = "GET, HEAD, OPTIONS, POST"
            return response
        return _report(InvalidParameter(f"{request.method} is not a WFS method; use GET or POST"), status=405,
                       headers={"Allow": "GET, HEAD, OPTIONS, POST"})
    except OGCError as exc:
        return _report(exc)
    except Exception as exc:
        error = from_database(exc)
        if error is None:
            raise
        return _report(error)


def _kvp(request: HttpRequest, identity) -> HttpResponse:
    params = {key.upper(): value for key, value in request.GET.items()}
    service_name = params.get("SERVICE", "WFS")
    if service_name.upper() != "WFS":
        raise InvalidParameter(f"SERVICE: this URL serves WFS, not {service_name!r}", )
    operation = params.get("REQUEST")
    if not operation:
        raise _missing("REQUEST", "e.g. REQUEST=GetCapabilities")
    if operation == "GetCapabilities":
        return _capabilities(request, identity)
    if operation == "DescribeFeatureType":
        from layers.wfs.reading import schema_document
        from layers.wfs.requests import described_layers

        return _answer(schema_document(described_layers(params, identity), role=identity.role), XML)
    if operation == "GetFeature":
        from layers.wfs.requests import feature_request_kvp

        return _features(request, identity, feature_request_kvp(params, identity), params)
    if operation == "Transaction":
        raise InvalidParameter("Transaction: POST the Transaction document to this URL")
    raise InvalidParameter(f"REQUEST: {operation!r} is not offered; use one of {', '.join(_OPERATIONS)}")


def _xml(request: HttpRequest, identity) -> HttpResponse:
    from layers.wfs import xml

    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > xml.MAX_BYTES:
        raise PayloadTooLarge(f"the request body is {int(declared):,} bytes; this server reads at most "
                              f"{xml.MAX_BYTES:,}")
    root = xml.parse(request.body)
    operation = xml.local(root)
    if operation == "GetCapabilities":
        return _capabilities(request, identity)
    if operation == "DescribeFeatureType":
        from layers.wfs.reading import schema_document
        from layers.wfs.requests import described_layers

        names = ",".join(xml.text(n) for n in xml.children(root, "TypeName"))
        return _answer(schema_document(described_layers({"TYPENAMES": names}, identity), role=identity.role), XML)
    if operation == "GetFeature":
        from layers.wfs.requests import feature_request_xml

        return _features(request, identity, feature_request_xml(root, identity), {})
    if operation == "Transaction":
        from layers.wfs.requests import layer_for
        from layers.wfs.transactions import response_document, run_transaction

        outcome = run_transaction(root, identity, layer_for=layer_for)
        return _answer(response_document(outcome), XML)
    raise InvalidBody(f"the document's root element {operation!r} is no WFS operation; use one of {', '.join(_OPERATIONS)}")


def _capabilities(request: HttpRequest, identity) -> HttpResponse:
    from layers.wfs.reading import capabilities_document

    extent = _community_extent()
    extents = {layer: extent for layer in _layer_ids()} if extent else None
    document = capabilities_document(role=identity.role, base=_base_url(), extents=extents)
    response = _answer(document, XML)
    if identity.is_anonymous:
        response["Cache-Control"] = "public, max-age=10"
    return response


def _features(request: HttpRequest, identity, feature_request, params: dict[str, str]) -> HttpResponse:
    from api.ogc import _access_log
    from layers.wfs.reading import feature_collection

    document = feature_collection(feature_request, identity, base=_base_url(), params=dict(request.GET.items()),
                                  access_log=_access_log(request, identity, feature_request.layer))
    return _answer(document, GML)


def _answer(document: bytes, content_type: str) -> HttpResponse:
    return HttpResponse(document, content_type=content_type)


def _missing(name: str, hint: str) -> InvalidParameter:
    error = InvalidParameter(f"{name} is required ({hint})")
    error.code = "MissingParameterValue"
    return error


def _report(exc: OGCError, *, status: int | None = None, headers: dict[str, str] | None = None) -> HttpResponse:
    """An OWS 1.1 ExceptionReport with the error's HTTP status (a 401 challenges for HTTP Basic)."""
    from layers.wfs.xml import OWS, escape

    code = _OWS_CODES.get(exc.code, exc.code)
    _log.warning("WFS %s %s: %s", status or exc.status, code, exc.description[:300])
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ows:ExceptionReport xmlns:ows="{OWS}" version="2.0.0" xml:lang="en">'
        f'<ows:Exception exceptionCode="{escape(code)}"><ows:ExceptionText>{escape(exc.description)}'
        "</ows:ExceptionText></ows:Exception></ows:ExceptionReport>"
    )
    response = HttpResponse(body.encode("utf-8"), status=status or exc.status, content_type=XML)
    for key, value in {**exc.headers, **(headers or {})}.items():
        response[key] = value
    if isinstance(exc, NotAuthenticated) and "WWW-Authenticate" not in response:
        from api.auth import BASIC_CHALLENGE

        response["WWW-Authenticate"] = BASIC_CHALLENGE
    return response


@functools.lru_cache(maxsize=1)
def _base_url() -> str:
    from core.settings import settings

    current = settings()
    base = current.public_url or f"http://{current.http_host}:{current.http_port}"
    return f"{base.rstrip('/')}/wfs"


def _layer_ids() -> list[str]:
    from layers.catalogue import LAYERS

    return [layer.id for layer in LAYERS]


_EXTENT: list = []


def _community_extent():
    """The community's bounding box (its grids' extent), read once per process; None while there are no grids."""
    if not _EXTENT:
        from core.identity import ANONYMOUS
        from layers.access import scoped_fetchone

        row = scoped_fetchone(ANONYMOUS, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                                         "FROM (SELECT ST_Extent(geom) AS e FROM ogc_grids) s", [])
        if row is None or row[0] is None:
            return None
        _EXTENT.append(tuple(round(v, 6) for v in row))
    return _EXTENT[0]
