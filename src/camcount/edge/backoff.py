"""Exponential backoff with full jitter, shared by stream reconnects and delivery retries.

Full jitter (a uniform draw between zero and the exponential ceiling) spreads the retries
of many workers that lost the same server at the same moment, so they do not come back
as one synchronised wave.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before the next attempt: ``uniform(min_delay, min(cap, base * 2**failures))``."""

    base: float = 0.5
    cap: float = 60.0
    min_delay: float = 0.05
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2.0 ** min(self.failures, 30)))
        self.failures += 1
        return max(self.min_delay, self.rng.uniform(0.0, ceiling))

    def reset(self) -> None:
        self.failures = 0
