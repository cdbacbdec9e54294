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


class PayloadTooLarge(OGCError):
    status = 413
    code = "PayloadTooLarge"


class ServiceUnavailable(OGCError):
    status = 503
    code = "ServiceUnavailable"


RETRY_AFTER_S = 5  # what a client is told to wait while the database cannot be reached


class database_errors:
    """Turn what PostgreSQL says about a client's request into an OGC error, never a 500.

    A value the database cannot compute (an overflow, a division by zero, a malformed
    literal: SQLSTATE class 22) and a statement cancelled by the request timeout are the
    client's to change (400); a database that cannot be reached is a 503 with
    ``Retry-After``. Anything else is left to propagate.
    """

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        error = from_database(exc) if exc is not None else None
        if error is not None:
            raise error from None
        return False


def from_database(exc) -> OGCError | None:
    """The OGC error a database exception stands for, or None when it is not the client's doing or an outage."""
    import psycopg

    if not isinstance(exc, (psycopg.Error, _PoolError)) and isinstance(exc.__cause__, psycopg.Error):
        exc = exc.__cause__  # Django's wrapper of the driver's error
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return InvalidParameter(
            "the request took longer than this server's limit (ONEMAP_STATEMENT_TIMEOUT_S) and was cancelled; "
            "narrow it with bbox, a simpler filter or a smaller limit"
        )
    if isinstance(exc, (psycopg.DataError, psycopg.errors.ProgramLimitExceeded)):
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return InvalidParameter(f"the database cannot evaluate this request: {first}; check the filter's values")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) or _pool_timeout(exc):
        return unavailable()  # cannot connect, shutting down, out of resources, a deadlock: try again
    return None


def unavailable() -> "ServiceUnavailable":
    return ServiceUnavailable(
        f"the database cannot be reached right now; try again in {RETRY_AFTER_S} s",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _pool_timeout(exc) -> bool:
    return isinstance(exc, _PoolError)


try:
    from psycopg_pool import PoolTimeout as _PoolError
except ImportError:  # pragma: no cover - the pool is a dependency
    class _PoolError(Exception):
        pass
