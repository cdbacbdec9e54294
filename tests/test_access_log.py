"""The HTTP access log the server's workers write themselves (host.access_log)."""

from __future__ import annotations

import asyncio
import os
import re
import select
import time

from host.access_log import FLUSH_BYTES, AccessLog, _chunks

LINE = re.compile(r'^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] (\S+) "(\S+) (.*) HTTP/1\.1" (\d+) (\d+\.\d) ms$')


def _scope(path: str, query: bytes = b"", method: str = "GET") -> dict:
    return {"type": "http", "method": method, "path": path, "query_string": query, "http_version": "1.1",
            "client": ("192.0.2.7", 50000)}


def _read_all(fd: int) -> str:
    chunks = []
    while select.select([fd], [], [], 0)[0]:
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode()


def test_lines_wait_for_the_flush_then_come_whole_with_secrets_blanked_and_no_forged_line():
    read, write = os.pipe()

    async def requests():
        log = AccessLog(write)
        started = time.perf_counter()
        log.record(_scope("/ogc/collections/grids/items", b"limit=2&token=om_abcdefghijklmnop"), 200, started)
        log.record(_scope("/ogc/x\nFAKE 200", method="POST"), 404, started)
        assert _read_all(read) == ""  # kept until the flush
        await asyncio.sleep(0.7)  # FLUSH_S later, on the loop
        return _read_all(read)

    try:
        text = asyncio.run(requests())
    finally:
        os.close(read)
        os.close(write)
    lines = text.splitlines()
    assert len(lines) == 2, text
    first, second = (LINE.match(line) for line in lines)
    assert first and second, lines
    assert first.group(1) == "192.0.2.7" and first.group(3) == "/ogc/collections/grids/items?limit=2&token=[redacted]"
    assert first.group(4) == "200"
    assert "om_abcdefghijklmnop" not in text and "abcdefghijklmnop" not in text
    assert second.group(2) == "POST" and second.group(3) == "/ogc/x\\x0aFAKE 200?" and second.group(4) == "404"


def test_no_write_is_larger_than_a_pipe_keeps_whole():
    lines = [f"line {i} ".encode() + b"x" * 900 + b"\n" for i in range(200)]
    chunks = list(_chunks(lines))
    assert b"".join(chunks) == b"".join(lines)
    assert all(len(chunk) <= select.PIPE_BUF and chunk.endswith(b"\n") for chunk in chunks)
    assert list(_chunks([b"y" * (2 * select.PIPE_BUF) + b"\n"])) == [b"y" * (2 * select.PIPE_BUF) + b"\n"]



def test_a_full_buffer_is_written_at_once(tmp_path):
    target = tmp_path / "access.log"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    async def burst():
        log = AccessLog(fd)
        for i in range(FLUSH_BYTES // 60 + 10):  # more than FLUSH_BYTES of lines: written without waiting
            log.record(_scope(f"/ogc/collections/buildings/items/{i}"), 200, time.perf_counter())
        return log

    try:
        log = asyncio.run(burst())
    finally:
        os.close(fd)
    written = target.read_bytes()
    assert len(written) >= FLUSH_BYTES and written.endswith(b" ms\n")
    assert 0 < log._size < FLUSH_BYTES  # the rest waits for the next flush (the loop ended first)
    assert all(LINE.match(line) for line in written.decode().splitlines())


def test_the_server_writes_its_access_log(server_process):
    """A real ``onemap serve``: the request's line reaches the server's output within a second or two."""
    import requests

    server = server_process("access-log")
    response = requests.get(f"{server.base_url}/ogc/collections/grids/items", params={"limit": "1", "probe": "x1"},
                            timeout=30)
    assert response.status_code in (200, 400)
    deadline = time.monotonic() + 10
    while "probe=x1" not in server.log_path.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.2)
    line = next(line for line in server.log_path.read_text(errors="replace").splitlines() if "probe=x1" in line)
    match = LINE.match(line)
    assert match and match.group(3) == "/ogc/collections/grids/items?limit=1&probe=x1", line
    assert match.group(4) == str(response.status_code)
