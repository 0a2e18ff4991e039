"""Latency figures from the daemon's own monotonic timestamps, cheap enough to record per chunk."""

from __future__ import annotations

import time

import numpy as np

SUMMARY_EVERY_S = 1.0


class LatencyStats:
    """The last `size` samples of one latency, in milliseconds, in a preallocated array.

    Recording is one store and one add, so it can sit on the hot path; percentiles are computed
    only when someone asks (`pttd status`, the benchmark).
    """

    def __init__(self, size: int = 4096) -> None:
        self._values = np.zeros(size, dtype=np.float64)
        self._count = 0

    def record_ms(self, ms: float) -> None:
        self._values[self._count % len(self._values)] = ms
        self._count += 1

    def record(self, start: float, end: float) -> None:
        self.record_ms((end - start) * 1000.0)

    @property
    def count(self) -> int:
        return self._count

    def summary(self) -> dict[str, float | int]:
        n = min(self._count, len(self._values))
        if n == 0:
            return {"n": 0}
        # Nearest-rank percentiles on a sorted copy: np.percentile would pull in numpy.ma, and
        # its resident memory (docs/performance-notes.md), for the same figures.
        ordered = np.sort(self._values[:n])
        p50 = ordered[min(n - 1, round(0.50 * (n - 1)))]
        p99 = ordered[min(n - 1, round(0.99 * (n - 1)))]
        return {"n": self._count, "p50": round(float(p50), 3), "p99": round(float(p99), 3),
                "max": round(float(ordered[-1]), 3)}


class Stats:
    """The latencies the daemon reports, by name (the keys of `pttd status`'s "stats")."""

    NAMES = ("capture_to_send_ms", "receive_to_alsa_ms", "prebuffer_wait_ms",
             "press_to_activity_start_ms", "release_to_activity_end_ms",
             "tail_to_activity_end_ms", "release_to_first_audio_ms")

    def __init__(self) -> None:
        self.capture_to_send = LatencyStats()
        self.receive_to_alsa = LatencyStats()
        self.prebuffer_wait = LatencyStats(256)
        self.press_to_activity_start = LatencyStats(256)
        self.release_to_activity_end = LatencyStats(256)
        # From the read holding the release (plus [audio] tail_ms) to activityEnd: what the
        # release costs beyond the tail.
        self.tail_to_activity_end = LatencyStats(256)
        self.release_to_first_audio = LatencyStats(256)
        self._summary: dict[str, dict[str, float | int]] | None = None
        self._summary_at = 0.0

    def summary(self, now: float | None = None) -> dict[str, dict[str, float | int]]:
        """Percentiles, recomputed at most once a second: `pttd status` may be polled often."""
        now = time.monotonic() if now is None else now
        if self._summary is None or now - self._summary_at >= SUMMARY_EVERY_S:
            self._summary = {name: getattr(self, name.removesuffix("_ms")).summary()
                             for name in self.NAMES}
            self._summary_at = now
        return self._summary
