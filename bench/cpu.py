"""CPU time by process group, read from ``/proc`` (Linux), to say where a path's time goes.

    before = cpu_by_group(api_pids)
    ... run a path ...
    spent = cpu_by_group(api_pids) - before   # seconds of CPU per group

Groups: ``api`` (the given server processes and their children), ``client`` (this process),
``postgres`` (PostgreSQL's processes: backends, WAL writer, checkpointer; backends that exited
during the run are counted through the postmaster, which reaps them) and ``other``: the rest of
what the machine's cores did (from ``/proc/stat``): the kernel's work not charged to a process
(interrupts, network and block-device softirqs, kernel threads) and any other program. On a
machine where they all share the cores, the sum is what a path costs; the ratio of two paths'
throughput cannot beat the ratio of their sums once the cores are busy.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSeconds:
    postgres: float
    api: float
    client: float
    other: float = 0.0

    def __sub__(self, other: CpuSeconds) -> CpuSeconds:
        return CpuSeconds(
            self.postgres - other.postgres,
            self.api - other.api,
            self.client - other.client,
            self.other - other.other,
        )

    @property
    def total(self) -> float:
        return self.postgres + self.api + self.client + self.other


@dataclass(frozen=True)
class _Process:
    name: str
    parent: int
    seconds: float  # its own CPU
    reaped: float  # CPU of its children that exited and were waited for


def _stat(pid: str) -> _Process | None:
    """A process's name, parent and CPU seconds, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    own = (int(fields[11]) + int(fields[12])) / _TICKS
    return _Process(name, int(fields[1]), own, (int(fields[13]) + int(fields[14])) / _TICKS)


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def cpu_by_group(api_pids: set[int]) -> CpuSeconds:
    """CPU seconds used so far by the machine's other work (PostgreSQL), the API server and this process."""
    busy = _machine_busy_seconds()
    stats = {int(pid): s for pid in os.listdir("/proc") if pid.isdigit() and (s := _stat(pid)) is not None}
    api = set(api_pids)
    grew = True
    while grew:  # the server's workers are its children
        children = {pid for pid, process in stats.items() if process.parent in api} - api
        api |= children
        grew = bool(children)
    me = os.getpid()
    api_seconds = sum(stats[pid].seconds for pid in api if pid in stats)
    client_seconds = stats[me].seconds if me in stats else 0.0
    postgres = {pid: p for pid, p in stats.items() if p.name == "postgres"}
    # The postmaster is the one postgres process whose parent is not postgres; it reaps the backends.
    postgres_seconds = sum(
        p.seconds + (p.reaped if p.parent not in postgres else 0.0) for p in postgres.values()
    )
    return CpuSeconds(
        postgres=postgres_seconds,
        api=api_seconds,
        client=client_seconds,
        other=busy - api_seconds - client_seconds - postgres_seconds,
    )


def server_pids(port: int) -> set[int]:
    """The pids of processes started with ``--port <port>`` on their command line (a bench's server)."""
    found: set[int] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a == b"--port" and b == str(port).encode() for a, b in itertools.pairwise(argv)):
            found.add(int(pid))
    return found
