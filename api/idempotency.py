"""Idempotent writes: a request with an ``Idempotency-Key`` header is applied once; a replay gets the first answer.

Phones queue what their worker does while offline and send it when the network is back; a
request that reached the server but whose answer was lost is sent again. The key is the
client's (one per action, made when the action was queued); the server keeps it per user
with the first answer, in the same transaction as the write (``gis.accounts.services.
request_claim``), so the write and its key commit together or not at all. A replay is
answered with the first answer's status and body, and the header ``Idempotent-Replayed:
true``; the same key with another method, path or body is a 422. Answers of 5xx are not
kept (nothing was written): the client tries again and the write is made then.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")


def replayable(request: HttpRequest, identity, run: Callable[[], HttpResponse], *,
               answer: Callable[[Exception], HttpResponse | None]) -> HttpResponse:
    """``run()`` once per key; without the header, just ``run()``. ``answer`` turns a refusal into its response."""
    from gis.accounts.services import request_answer, request_claim

    key = request.headers.get(HEADER)
    if key is None:
        return run()
    if not _KEY.match(key) or identity.user_id is None:
        return _error(400, f"{HEADER} must be 8 to 100 letters, digits or . _ : - (a UUID is fine)")
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        earlier = request_claim(user_id=identity.user_id, key=key, fingerprint=fingerprint)
        if earlier is not None:
            return _replay(earlier, fingerprint)
        try:
            with transaction.atomic():  # a refusal undoes whatever the write began; the claim stays
                response = run()
                if response.status_code >= 400:
                    raise _Undo(response)
        except _Undo as undone:
            response = undone.response
        except Exception as exc:
            response = answer(exc)
            if response is None:
                raise
        if response.status_code >= 500:
            transaction.set_rollback(True)  # nothing is kept: the client's retry is the first attempt
            return response
        request_answer(user_id=identity.user_id, key=key, status=response.status_code,
                       content_type=response.get("Content-Type", ""), body=bytes(response.content))
    return response


class _Undo(Exception):
    def __init__(self, response: HttpResponse):
        self.response = response


def _fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


def _replay(earlier, fingerprint: str) -> HttpResponse:
    if earlier.fingerprint != fingerprint:
        return _error(422, f"this {HEADER} was used for another request (another action, case or body); "
                           "make a new key for each action")
    response = HttpResponse(bytes(earlier.body), status=earlier.status,
                            content_type=earlier.content_type or "application/json")
    response[REPLAYED] = "true"
    return response


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": status, "error": message}, status=status, json_dumps_params={"ensure_ascii": False})
