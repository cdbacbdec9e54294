"""One exception tree for the OGC API; each error carries its HTTP status and OGC exception code."""

from __future__ import annotations

import json


class OGCError(Exception):
    """An error answered as OGC exception JSON: ``{"code", "description"}`` with its HTTP status."""

    status = 500
    code = "NoApplicableCode"

    def __init__(self, description: str, *, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.description = description
        self.headers = headers or {}

    def body(self) -> bytes:
        return json.dumps(
            {"code": self.code, "type": self.code, "description": self.description}, ensure_ascii=False
        ).encode()


class InvalidParameter(OGCError):
    status = 400
    code = "InvalidParameterValue"


class InvalidBody(OGCError):
    status = 400
    code = "InvalidRequestBody"


class NotAuthenticated(OGCError):
    status = 401
    code = "NotAuthenticated"


class Forbidden(OGCError):
    status = 403
    code = "Forbidden"


class NotFound(OGCError):
    status = 404
    code = "NotFound"


class MethodNotAllowed(OGCError):
    status = 405
    code = "MethodNotAllowed"


class NotAcceptable(OGCError):
    status = 406
    code = "NotAcceptable"


class PreconditionFailed(OGCError):
    status = 412
    code = "PreconditionFailed"


class UnsupportedMediaType(OGCError):
    status = 415
    code = "UnsupportedMediaType"


class TooManyRequests(OGCError):
    status = 429
    code = "TooManyRequests"
