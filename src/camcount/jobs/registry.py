"""The job registry: what runs, how often, and the function that does it.

A job is an ``async def`` taking a :class:`JobContext` and returning a JSON-able dict of details
(counts of what it did), recorded in ``control.job_runs``. To add one (issue 4: usage resets,
billing cycles, storage measurement), write in your own module::

    from camcount.jobs.registry import JobContext, job

    @job("usage_reset", every=timedelta(hours=1), description="Reset usage counters whose period ended.")
    async def usage_reset(ctx: JobContext) -> dict[str, Any]:
        ...
        return {"reset": n}

and add the module's dotted name to :data:`JOB_MODULES`. Jobs must be idempotent: a slot may be
skipped (no worker running) and a manual run may happen at any time.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from camcount.db.pools import Database
from camcount.errors import NotFound

# Modules whose import registers jobs (with @job). Add yours here.
JOB_MODULES: tuple[str, ...] = (
    "camcount.jobs.partitions",
    "camcount.jobs.retention",
    "camcount.jobs.health",
    "camcount.limits.jobs",
)

# Slots are counted from this instant (a Monday, midnight UTC): a daily job's slot starts at 00:00 UTC.
SLOT_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobContext:
    """What a run gets: the database, the time it runs for (injected in tests) and its slot."""

    db: Database
    now: datetime
    slot: datetime


class JobFailed(Exception):
    """Raised by a job that did part of its work: the run is recorded as failed, with ``details``."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


JobFunction = Callable[[JobContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: JobFunction
    description: str = ""

    def slot_for(self, now: datetime) -> datetime:
        """The start of the interval that ``now`` falls in."""
        periods = (now - SLOT_EPOCH) // self.every
        return SLOT_EPOCH + periods * self.every

    def next_slot(self, now: datetime) -> datetime:
        return self.slot_for(now) + self.every


_REGISTRY: dict[str, Job] = {}


def register(new: Job) -> Job:
    if not _NAME.match(new.name):
        raise ValueError(f"job name {new.name!r} must match {_NAME.pattern}")
    if new.every < timedelta(minutes=1):
        raise ValueError(f"job {new.name!r}: the interval must be at least one minute")
    existing = _REGISTRY.get(new.name)
    if existing is not None and existing.run is not new.run:
        raise ValueError(f"job {new.name!r} is registered twice")
    _REGISTRY[new.name] = new
    return new


def job(name: str, *, every: timedelta, description: str = "") -> Callable[[JobFunction], JobFunction]:
    """Decorator: register ``function`` as the periodic job ``name``, run once per ``every``."""

    def decorate(function: JobFunction) -> JobFunction:
        register(Job(name, every, function, description or (function.__doc__ or "").strip().split("\n")[0]))
        return function

    return decorate


def load_jobs() -> list[Job]:
    """Every registered job, after importing the modules in JOB_MODULES; sorted by name."""
    for module in JOB_MODULES:
        importlib.import_module(module)
    return sorted(_REGISTRY.values(), key=lambda j: j.name)


def get_job(name: str) -> Job:
    for candidate in load_jobs():
        if candidate.name == name:
            return candidate
    known = ", ".join(j.name for j in load_jobs())
    raise NotFound(f"no job {name[:64]!r} (known: {known})")
