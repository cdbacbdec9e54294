"""Scoped reads on the server's event loop: the OGC fast path's one round trip without a thread.

``host.asgi`` answers ``GET …/items[/{id}]`` on its event loop when it can
(:func:`api.fastpath.answer_on_loop`): handing a request to a thread and back costs
more CPU than PostgreSQL spends on an item by id. The read is the batch
:func:`layers.access.scoped_fetchone` sends — the same text, the same prepared
statements, the same scope — sent with libpq's asynchronous calls (``PQsendQuery``,
then ``PQconsumeInput`` whenever the loop sees the socket readable), on one of the few
connections the loop keeps (:func:`layers.db.loop_connection`).

What to send, and what to do when a batch fails, is decided once for both paths
(:func:`layers.access.read_steps`). Two things the loop hands back to the thread path
with :class:`Fallback`, which then answers the whole request as before: no connection
free at once, and a connection the server dropped (the thread path asks again on a
fresh one). A failed read is rolled back by PostgreSQL (a batch is one implicit
transaction), so making it again on a thread repeats nothing but the attempt; at worst a
personal layer's access log holds the read twice, never not at all.
"""

from __future__ import annotations

import asyncio
from typing import Generator, TypeVar

from psycopg import Error, pq

from layers.access import Read, checked, read_steps
from layers.db import loop_connection
from layers.errors import database_errors

T = TypeVar("T")


class Fallback(Exception):
    """This read (and so its request) must be made on a request thread instead."""


async def run_reads_on_loop(steps: Generator[Read, tuple | None, T]) -> T:
    """:func:`layers.access.run_reads` on the event loop; raises :class:`Fallback` when a thread must do it."""
    try:
        read = next(steps)
        while True:
            with database_errors():
                row = await fetchone_on_loop(read)
            read = steps.send(row)
    except StopIteration as done:
        return done.value


async def fetchone_on_loop(read: Read) -> tuple | None:
    """``read``'s first row, read without blocking the loop; Fallback when the thread path must make it."""
    with loop_connection() as conn:
        if conn is None:
            raise Fallback("no connection free at once")
        steps = read_steps(conn, read.identity, read.statement, read.params, generic_plan=read.generic_plan,
                           raw=read.raw)
        text = next(steps)
        while True:
            try:
                result = await _exec_on_loop(conn, text)
            except Error as exc:
                try:
                    text = steps.throw(exc)
                except Error as final:
                    if conn.closed:  # (not chained: database_errors would take a chained error for the client's)
                        raise Fallback(f"the connection was lost: {final}") from None
                    raise
                continue
            try:
                text = steps.send(result)
            except StopIteration as done:
                return done.value


async def _exec_on_loop(conn, text: str):
    """The batch's last result (an error result raises, as :func:`layers.access.checked`), read as the loop allows.

    The socket is watched for the whole read (a page arrives in several pieces; watching
    it afresh for each costs two system calls). A read that does not finish (cancelled,
    or the connection failed) closes the connection: what it would have said next is
    unknown.
    """
    pgconn = conn.pgconn
    loop = asyncio.get_running_loop()
    fd = pgconn.socket
    waiting: list[asyncio.Future] = []

    def readable():  # called by the loop on every pass while the socket has something to read
        if waiting and not waiting[-1].done():
            waiting[-1].set_result(None)

    finished = False
    loop.add_reader(fd, readable)
    try:
        pgconn.send_query(text.encode())
        while pgconn.flush():  # 1 while some of the batch is still to be written
            await _writable(loop, fd)
        last = error = None
        while True:
            if pgconn.is_busy():
                waiting.append(loop.create_future())
                await waiting[-1]
                waiting.clear()
                pgconn.consume_input()
                continue
            result = pgconn.get_result()
            if result is None:
                break
            if result.status == pq.ExecStatus.FATAL_ERROR and error is None:
                error = result
            last = result
        finished = True
    finally:
        loop.remove_reader(fd)
        if not finished:
            conn.close()
    return checked(conn, error or last)


async def _writable(loop, fd: int) -> None:
    """Wait until ``fd`` can be written without blocking (a batch longer than the socket's buffer)."""
    future = loop.create_future()

    def wake():
        if not future.done():
            future.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await future
    finally:
        loop.remove_writer(fd)
