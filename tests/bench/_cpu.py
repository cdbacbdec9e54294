"""CPU seconds spent on a benchmark's answers, from /proc: what a run costs whatever else the machine does.

Requests per second on a shared two-core machine say as much about the other load as about
the code: the same case moved by ±30 % between runs minutes apart. The CPU time that the
answering processes spend per answer does not depend on how long they waited for a core, so
``ratio of CPU per answer`` estimates the ratio of throughputs on a quiet machine where both
sides are CPU-bound (as ``wrk -c8`` and ``pgbench -c8`` keep them on two cores).

:class:`CpuMeter` polls ``/proc/<pid>/stat`` of the server's process tree and of the
PostgreSQL backends connected to one database every 0.2 s while a run lasts. A backend that
ends during the run (pgbench's clients, at its end) is counted up to its last poll, so up to
0.2 s of its time may be missed: a small bias in the baseline's favour.
"""

from __future__ import annotations

import os
import threading

_TICKS = os.sysconf("SC_CLK_TCK")
POLL_S = 0.2


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15 of stat)


def descendants(root: int) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


class CpuMeter:
    """CPU seconds of a process tree and of one database's backends between ``start()`` and ``stop()``."""

    def __init__(self, url: str, *, root_pid: int | None = None):
        self.url, self.root_pid = url, root_pid
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn = None

    def start(self) -> "CpuMeter":
        import psycopg

        self._conn = psycopg.connect(self.url, autocommit=True)
        self._own_backend = self._conn.info.backend_pid
        self._poll(initial=True)  # processes alive now count from now; later ones from their start
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._poll()
        self._conn.close()
        return sum(self._last[pid] - self._first.get(pid, 0.0) for pid in self._last)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self._poll()

    def _pids(self) -> set[int]:
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s",
            (self._own_backend,),
        ).fetchall()
        pids = {row[0] for row in rows}
        if self.root_pid is not None:
            pids |= descendants(self.root_pid)
        return pids

    def _poll(self, *, initial: bool = False) -> None:
        for pid in self._pids():
            cpu = process_cpu(pid)
            if cpu is None:
                continue
            if initial:
                self._first[pid] = cpu
            self._last[pid] = cpu


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (wrk, pgbench) so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
