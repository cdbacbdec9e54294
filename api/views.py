"""Small pages that are not the OGC API."""

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from psycopg import sql

from layers.catalogue import public_layers


def home(request: HttpRequest) -> HttpResponse:
    """What is served here, with feature counts and how to open it in QGIS."""
    from gis.models import Grid

    layers = []
    with connection.cursor() as cursor:
        for layer in public_layers():
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(layer.view)).as_string(cursor.connection))
            layers.append({"id": layer.id, "title": layer.title, "title_zh": layer.title_zh, "count": cursor.fetchone()[0]})
    counts = {row["id"]: row["count"] for row in layers}
    context = {
        "layers": layers,
        "level1": Grid.objects.filter(level=1).order_by("code").first(),
        "counts": {
            "grids_level3": Grid.objects.filter(level=3).count(),
            "buildings": counts.get("buildings", 0),
            "cameras": counts.get("cameras", 0),
        },
        "synthetic": Grid.objects.filter(synthetic=True).exists(),
        "ogc_url": request.build_absolute_uri("/ogc"),
    }
    return render(request, "home.html", context)


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT postgis_lib_version()")
        postgis = cursor.fetchone()[0]
    return JsonResponse({"status": "ok", "postgis": postgis})


def openapi_json(request: HttpRequest) -> JsonResponse:
    """The whole server's OpenAPI document (``api.openapi``)."""
    from api.openapi import openapi_document

    return JsonResponse(openapi_document(), json_dumps_params={"ensure_ascii": False})
