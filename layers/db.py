"""The OGC API's connection pool: one per server worker process, opened in that process.

The server's request threads (``host.asgi``'s pool, threads named ``onemap-wsgi…``) each
keep one of the pool's connections for their reads (:func:`read_connection`): handing a
connection out and taking it back (psycopg_pool's locks, queue and the idle check) cost
about 0.09 ms of CPU per read, more than PostgreSQL spends on an item by id. Those threads
live as long as the worker, so what they keep is bounded by their number; at most half the
pool is kept this way and every other thread borrows as before.

The server's event loop reads through a few connections of its own (:func:`loop_connection`,
used by :mod:`layers.loop_reads`), taken from the pool only when one is free at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger(__name__)
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
            close_loop_connections()


def close_loop_connections() -> None:
    """Close the connections the event loop holds idle (a stopping server; the pool closing)."""
    global _loop_held
    with _lock:
        idle = list(_loop_idle)
        _loop_idle.clear()
        _loop_held -= len(idle)
    for owner, conn in idle:
        _release(owner, conn)


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


LOOP_CONNECTIONS = 4  # at most this many of the pool's connections serve the event loop's reads
_loop_idle: list = []  # [(pool, connection)] the loop holds and is not using
_loop_held = 0  # how many the loop holds, idle or in use (or being fetched)
_loop_growing = False  # a thread is fetching one for the loop


@contextmanager
def loop_connection() -> Iterator:
    """An idle connection for one read on the event loop, or None when there is none without waiting.

    The loop never waits for the pool (it would stall every request of the process):
    with all of its own in use, the caller hands the read to a thread, and while the loop
    holds fewer than ``LOOP_CONNECTIONS`` a thread fetches it one more from the pool.
    The connection goes back to the loop's own when the block ends, idle; a closed or
    busy one (a read cancelled halfway) goes back to the pool, which discards it.
    """
    conn = _loop_take()
    try:
        yield conn
    finally:
        if conn is not None:
            _loop_return(conn)


def _loop_take():
    """An idle connection of the loop's; else None, and when the loop may hold more, one is fetched on a thread."""
    global _loop_held, _loop_growing
    current = pool()
    with _lock:
        while _loop_idle:
            owner, conn = _loop_idle.pop()
            if owner is current and not conn.closed and conn.info.transaction_status == 0:
                return conn
            _loop_held -= 1
            _release(owner, conn)
        grow = _loop_held < LOOP_CONNECTIONS and not _loop_growing
        if grow:
            _loop_held += 1
            _loop_growing = True
    if grow:  # the pool may have to open one, or wait for one: never on the loop
        asyncio.get_running_loop().run_in_executor(None, _loop_grow, current)
    return None


def _loop_grow(owner) -> None:
    """Take one more connection from the pool for the loop (on a thread; the pool waits as long as it must)."""
    global _loop_held, _loop_growing
    try:
        conn = owner.getconn()
    except Exception as exc:  # the database is away or the pool is exhausted: the threads answer meanwhile
        log.warning("the event loop could not have a connection (%s); reads go to threads", exc)
        with _lock:
            _loop_held -= 1
            _loop_growing = False
        return
    _LOOP_OWNER[conn] = owner
    with _lock:
        _loop_idle.append((owner, conn))
        _loop_growing = False


def _loop_return(conn) -> None:
    global _loop_held
    owner = _LOOP_OWNER.get(conn)
    with _lock:
        if owner is _pool and not conn.closed and conn.info.transaction_status == 0:
            _loop_idle.append((owner, conn))
            return
        _loop_held -= 1
    _release(owner, conn)


def _release(owner, conn) -> None:
    """Give a connection back to its pool (which discards a broken one), or close it when that pool is gone."""
    if owner is None or owner is not _pool:
        conn.close()
        return
    try:
        owner.putconn(conn)
    except Exception:  # the pool closed meanwhile
        conn.close()


_LOOP_OWNER: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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
