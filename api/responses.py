"""JSON answers of the project's own APIs (cases, care, sensors, the phone, residents): one shape everywhere.

A body as JSON with Chinese kept readable (no ``\\uXXXX``), any headers the view adds, and an
error as ``{"status": …, "error": "…"}``, the sentence saying what was wrong.
"""

from __future__ import annotations

from django.http import JsonResponse


def json_answer(data, status: int = 200, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse(data, status=status, safe=False, json_dumps_params={"ensure_ascii": False})
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def json_error(status: int, message: str, headers: dict | None = None) -> JsonResponse:
    return json_answer({"status": status, "error": message}, status, headers)
