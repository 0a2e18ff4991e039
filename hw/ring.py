"""Sample buffers for the audio threads, each on one preallocated int16 array.

`Ring` is the capture ring: one producer (the capture thread) that never waits and overwrites
the oldest samples, one consumer (the asyncio side) that reads by absolute position, so the
last few hundred ms before a press are always there for the pre-roll. `Fifo` is the playback
jitter buffer: it must hold a whole reply that arrives faster than real time, so it never
drops anything and grows (by doubling, rarely) instead.
"""

from __future__ import annotations

import numpy as np


class Ring:
    """Single-producer/single-consumer int16 ring addressed by absolute sample positions.

    Positions count every sample ever written, so a reader's position stays meaningful across
    wrap-arounds, and "the last N samples" is simply `head - N`. The producer announces how far
    it is about to write before copying and publishes `head` after; the consumer re-checks that
    announcement after its own copy, so a read that raced an overwrite is detected and retried
    from what is intact instead of returning torn data.

    `overruns` counts reads that found their position already overwritten (the reader fell
    more than `capacity` behind); `high_water` is the largest backlog a read has found.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ring capacity must be positive, got {capacity}")
        self._buf = np.zeros(capacity, dtype=np.int16)
        self._capacity = capacity
        self._head = 0
        self._reserved = 0
        self.overruns = 0
        self.high_water = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def head(self) -> int:
        """Total samples ever written: the absolute position just past the newest sample."""
        return self._head

    @property
    def oldest(self) -> int:
        """Absolute position of the oldest sample still kept."""
        return max(0, self._head - self._capacity)

    def write(self, samples: np.ndarray) -> None:
        """Append samples, overwriting the oldest when full; never blocks, never allocates."""
        n = len(samples)
        if n == 0:
            return
        cap = self._capacity
        if n > cap:
            samples = samples[n - cap:]
            start = self._head + n - cap
            m = cap
        else:
            start = self._head
            m = n
        self._reserved = self._head + n
        i = start % cap
        first = min(m, cap - i)
        self._buf[i:i + first] = samples[:first]
        if first < m:
            self._buf[:m - first] = samples[first:]
        self._head = self._reserved

    def read(self, pos: int, out: np.ndarray) -> tuple[int, int]:
        """Copy samples from absolute `pos` into `out`; return (new_pos, n_copied).

        A `pos` older than the oldest kept sample is clamped to it and counted as an overrun;
        a `pos` beyond the head is an error (the reader can only have been handed past positions).
        """
        cap = self._capacity
        head = self._head
        if pos > head:
            raise ValueError(f"read position {pos} is beyond the ring head {head}")
        while True:
            oldest = self._reserved - cap
            if pos < oldest:
                self.overruns += 1
                pos = min(oldest, head)
            self.high_water = max(self.high_water, head - pos)
            n = min(head - pos, len(out))
            if n <= 0:
                return pos, 0
            i = pos % cap
            first = min(n, cap - i)
            out[:first] = self._buf[i:i + first]
            if first < n:
                out[first:n] = self._buf[:n - first]
            if pos >= self._reserved - cap:
                return pos + n, n
            # The producer overwrote part of what was copied: start again from what is intact.
            head = self._head


class Fifo:
    """Unbounded first-in first-out int16 buffer on one array that doubles when full.

    Thread safety is the caller's (the playback engine holds its lock around every call).
    """

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(max(capacity, 1), dtype=np.int16)
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def clear(self) -> None:
        self._start = self._end = 0

    def push(self, samples: np.ndarray) -> None:
        n = len(samples)
        if self._end + n > len(self._buf):
            size = self._end - self._start
            if size + n > len(self._buf):
                grown = np.zeros(max(2 * len(self._buf), size + n), dtype=np.int16)
                grown[:size] = self._buf[self._start:self._end]
                self._buf = grown
            else:
                self._buf[:size] = self._buf[self._start:self._end]
            self._start, self._end = 0, size
        self._buf[self._end:self._end + n] = samples
        self._end += n

    def pop_into(self, out: np.ndarray) -> int:
        """Move up to len(out) of the oldest samples into `out`; return how many."""
        n = min(len(out), self._end - self._start)
        out[:n] = self._buf[self._start:self._start + n]
        self._start += n
        if self._start == self._end:
            self._start = self._end = 0
        return n
