"""The retry rhythm for everything pttd reopens: a lost sound card, a dropped Live session.

Delays double from `lo` to `hi`, each scaled by a random factor in [0.5, 1) so that many
speakers behind one outage do not retry in step; a success resets it.

    backoff = Backoff(0.2, 5.0)
    while not reopen():
        time.sleep(backoff.next())
    backoff.reset()
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Exponential delays between `lo` and `hi`, each scaled by a jitter factor in [0.5, 1)."""

    def __init__(self, lo: float, hi: float, rand: Callable[[], float] = random.random) -> None:
        self.lo, self.hi, self._rand = lo, hi, rand
        self.attempt = 0

    def next(self) -> float:
        base = min(self.hi, self.lo * 2.0 ** min(self.attempt, 32))
        self.attempt += 1
        return base * (0.5 + 0.5 * self._rand())

    def reset(self) -> None:
        self.attempt = 0
