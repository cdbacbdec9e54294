"""Small pages that are not the OGC API."""

from pathlib import Path

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from psycopg import sql

from core.roles import ROLES
from layers.catalogue import LAYERS

LOGO = Path(__file__).parent / "static" / "onemap" / "logo.svg"


def home(request: HttpRequest) -> HttpResponse:
    """What is served here and for whom, the layers the visitor may read with their counts, and how to sign in."""
    from api.auth import AuthError, identity_for_request
    from core.identity import ANONYMOUS
    from core.settings import settings
    from gis.models import Grid

    try:
        identity = identity_for_request(request)
    except AuthError:
        identity = ANONYMOUS
    readable = [layer for layer in LAYERS if layer.readable_by(identity.role)]
    counts = _visible_counts(identity, readable)
    context = {
        "site": settings().site,
        "identity": identity,
        "layers": [{"id": layer.id, "title": layer.title, "title_zh": layer.title_zh, "count": counts[layer.id]}
                   for layer in readable],
        # what signing in adds: the layers some signed-in role reads that this visitor does not
        "more_when_signed_in": [layer for layer in LAYERS if not layer.readable_by(identity.role)
                                and any(layer.readable_by(role) for role in ROLES)],
        "level1": Grid.objects.filter(level=1).order_by("code").first(),
        "grids_level3": Grid.objects.filter(level=3).count(),
        "synthetic": Grid.objects.filter(synthetic=True).exists(),
        "ogc_url": request.build_absolute_uri("/ogc"),
        "base_url": request.build_absolute_uri("/").rstrip("/"),
    }
    return render(request, "home.html", context)


def _visible_counts(identity, layers) -> dict[str, int]:
    """Each layer's feature count as the visitor's own scope sees it (row-level security applies)."""
    from layers.access import scoped_connection

    counts = {}
    with scoped_connection(identity) as conn:
        for layer in layers:
            counts[layer.id] = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(layer.view))).fetchone()[0]
    return counts


def site_context(request: HttpRequest) -> dict:
    """``site`` (the product's name, operator, logo) for every Django page, error pages included."""
    from core.settings import settings

    return {"site": settings().site}


def favicon(request: HttpRequest) -> HttpResponse:
    """The product's logo, for browsers that ask for ``/favicon.ico`` whatever the page links."""
    response = HttpResponse(LOGO.read_bytes(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT postgis_lib_version()")
        postgis = cursor.fetchone()[0]
    return JsonResponse({"status": "ok", "postgis": postgis})


def openapi_json(request: HttpRequest) -> JsonResponse:
    """The whole server's OpenAPI document (``api.openapi``)."""
    from api.openapi import openapi_document

    return JsonResponse(openapi_document(), json_dumps_params={"ensure_ascii": False})
