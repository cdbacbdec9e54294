"""The OGC API's connection pool: one per server worker process, opened in that process."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_pool = None


def pool():
    """The process's psycopg connection pool to the configured database."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = _open_pool()
    return _pool


def close_pool() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None


def _open_pool():
    from psycopg_pool import ConnectionPool

    from core.settings import database_url

    return ConnectionPool(
        database_url(),
        min_size=1,
        max_size=12,
        open=True,
        name="onemap-ogc",
        # no liveness query per checkout (it would double a request's round trips):
        # a connection broken by a server restart fails once, is discarded by the pool,
        # and the read is retried on a fresh one (layers.access.scoped_connection)
        # autocommit: layers.access.scoped_connection sends BEGIN with the scope settings
        kwargs={"application_name": "onemap-ogc", "autocommit": True,
                # no automatic server-side preparing by psycopg: layers.access prepares the reads
                # itself and clears them after a failure (DEALLOCATE ALL), which would silently
                # drop psycopg's own statements and leave the connection failing for good
                "prepare_threshold": None},
        reset=_check_idle,
    )


def _check_idle(conn) -> None:
    """Run by the pool as a connection comes back: one that is not idle is discarded (raising discards it)."""
    if conn.info.transaction_status != 0:
        raise RuntimeError("a pooled connection came back inside a transaction; discarding it")
