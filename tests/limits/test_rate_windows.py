"""The in-process rate windows give the ``limits`` library's sliding window counter answers, hit for hit."""

from __future__ import annotations

import random
import uuid

import limits.aio.storage.memory as memory_module
import limits.aio.strategies as strategies_module
import pytest
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from camcount.limits.rate import LocalWindows, RateLimited, RateLimiter
from limits import RateLimitItemPerSecond


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.mark.parametrize("rate", [1, 3, 50])
async def test_local_windows_admit_and_report_as_the_library_does(
    rate: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(memory_module, "time", clock)
    monkeypatch.setattr(strategies_module, "time", clock)
    library = SlidingWindowCounterRateLimiter(MemoryStorage())
    item = RateLimitItemPerSecond(rate, 1)
    local = LocalWindows()
    steps = random.Random(rate)
    for _ in range(5000):
        if steps.random() < 0.5:
            clock.now += steps.choice([0.0001, 0.003, 0.02, 0.1, 0.4, 1.3, 2.5])
        else:
            clock.now += steps.random() * 0.05
        admitted = await library.hit(item, "k")
        stats = await library.get_window_stats(item, "k")
        ours, remaining, reset_in = local.hit(("k",), rate, 1, clock.now)
        assert (ours, remaining) == (admitted, stats.remaining)
        assert max(1, int(reset_in + 0.999)) == max(1, int(stats.reset_time - clock.now + 0.999))


async def test_redis_buckets_admit_by_redis_and_count_headers_down_between_readings() -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    limiter = RateLimiter("redis://127.0.0.1:6379/0", namespace=namespace)
    remaining = [(await limiter.hit("tenant", 5, "42"))[0] for _ in range(5)]
    assert remaining[0] == 4  # the first reading is Redis's
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] <= 1  # then counted down
    with pytest.raises(RateLimited):  # admission is always Redis's answer, never the reading
        await limiter.hit("tenant", 5, "42")
    other = RateLimiter("redis://127.0.0.1:6379/0", namespace=namespace)
    with pytest.raises(RateLimited):  # another process shares the bucket
        await other.hit("tenant", 5, "42")
