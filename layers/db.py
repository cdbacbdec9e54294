"""The OGC API's connection pool: one per server worker process, opened in that process.

The server's request threads (``host.asgi``'s pool, threads named ``onemap-wsgi…``) each
keep one of the pool's connections for their reads (:func:`read_connection`): handing a
connection out and taking it back (psycopg_pool's locks, queue and the idle check) cost
about 0.09 ms of CPU per read, more than PostgreSQL spends on an item by id. Those threads
live as long as the worker, so what they keep is bounded by their number; at most half the
pool is kept this way and every other thread borrows as before.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.RLock()  # re-entrant: a dropped _Kept gives its connection back from __del__, at any moment
_pool = None
MAX_SIZE = 12
KEEPING_THREADS = "onemap-wsgi"  # the name prefix of host.asgi's request threads
_kept = threading.local()
_kept_count = 0


def pool():
    """The process's psycopg connection pool to the configured database."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = _open_pool()
    return _pool


def close_pool() -> None:
    global _pool, _kept_count
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None
            _kept_count = 0  # a thread's kept connection of the closed pool is dropped at its next read


@contextmanager
def read_connection() -> Iterator:
    """A connection for one read: this request thread's own, or one borrowed from the pool for the block.

    The connection is idle (no transaction open) when the block starts; the caller leaves
    it idle, or closed when it could not (``layers.access._recover``), and a closed one is
    replaced at the next read.
    """
    kept = _kept_connection()
    if kept is None:
        with pool().connection() as conn:
            yield conn
        return
    yield kept


def _kept_connection():
    """This thread's kept connection (taken from the pool the first time), or None when it keeps none."""
    global _kept_count
    current = pool()
    kept = getattr(_kept, "kept", None)
    if kept is not None:
        if kept.owner is current and not kept.conn.closed and kept.conn.info.transaction_status == 0:
            return kept.conn
        _kept.kept = None
        kept.give_back()
    if not threading.current_thread().name.startswith(KEEPING_THREADS):
        return None
    with _lock:
        if _kept_count >= MAX_SIZE // 2:
            return None
        _kept_count += 1
    try:
        conn = current.getconn()
    except BaseException:
        with _lock:
            _kept_count -= 1
        raise
    _kept.kept = _Kept(current, conn)
    return conn


class _Kept:
    """One thread's connection; given back to its pool when replaced, or when the thread ends and drops it."""

    __slots__ = ("owner", "conn", "given_back")

    def __init__(self, owner, conn):
        self.owner, self.conn, self.given_back = owner, conn, False

    def give_back(self) -> None:
        global _kept_count
        if self.given_back:
            return
        self.given_back = True
        if self.owner is not _pool:  # its pool was closed since (close_pool reset the count)
            self.conn.close()
            return
        with _lock:
            _kept_count -= 1
        try:
            self.owner.putconn(self.conn)  # the pool discards a closed or broken one
        except Exception:  # the pool closed meanwhile
            self.conn.close()

    def __del__(self):
        self.give_back()


def _open_pool():
    from psycopg_pool import ConnectionPool

    from core.settings import database_url

    return ConnectionPool(
        database_url(),
        min_size=1,
        max_size=MAX_SIZE,
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
