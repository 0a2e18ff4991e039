"""Streaming rate conversion and channel mix-down for the audio threads.

A resampler that is called per period must keep its filter state between calls (separate
calls to a one-shot resampler leave edge artefacts at every period boundary), so this wraps
`soxr.ResampleStream`. It runs in float32 because soxr's int16 output is dithered (two runs
over the same input differ), which would make streaming output depend on the chunking; the
rounding back to int16 is ours and deterministic. Both classes reuse their buffers: the hot path
allocates only what soxr itself returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import soxr



def saturate(values: np.ndarray, out: np.ndarray) -> None:
    """Store `values` (float, rounded here, or a wider int) into int16 `out`, clipped to its
    range rather than wrapped: the one rule for every sum or gain that can overflow.

        saturate(np.array([40000.4, -1.6], dtype=np.float32), out)   # out: [32767, -2]
    """
    if values.dtype.kind == "f":
        np.rint(values, out=values)
    np.clip(values, -32768, 32767, out=values)
    np.copyto(out, values, casting="unsafe")

class Resampler:
    """int16 mono stream from `in_rate` to `out_rate`; a pass-through when the rates match."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream: soxr.ResampleStream | None = None
        if in_rate != out_rate:
            # Imported only when a stream needs it: a device that grants the rates pttd asks
            # for never does, and `pttd run` reaches READY without loading soxr.
            import soxr

            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32",
                                               quality=quality)
        self._flushed = False
        self._fin = np.zeros(0, dtype=np.float32)
        self._out = np.zeros(0, dtype=np.int16)

    @property
    def passthrough(self) -> bool:
        return self._stream is None

    @property
    def drained(self) -> bool:
        """Nothing is held back in the filter: a pass-through, or flushed since the last input."""
        return self._stream is None or self._flushed

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Convert the next chunk; early output is short while the filter primes.

        The result is a reused buffer, valid until the next call.
        """
        if self._stream is None:
            return samples
        if self._flushed:
            self.reset()
        n = len(samples)
        if len(self._fin) < n:
            self._fin = np.zeros(n, dtype=np.float32)
        fin = self._fin[:n]
        np.copyto(fin, samples)
        return self._to_int16(self._stream.resample_chunk(fin))

    def flush(self) -> np.ndarray:
        """The filter's tail at the end of a stream; the next `process` starts a new stream."""
        if self._stream is None or self._flushed:
            return np.zeros(0, dtype=np.int16)
        self._flushed = True
        return self._to_int16(self._stream.resample_chunk(np.zeros(0, dtype=np.float32),
                                                          last=True))

    def _to_int16(self, y: np.ndarray) -> np.ndarray:
        n = len(y)
        if len(self._out) < n:
            self._out = np.zeros(max(n, 2 * len(self._out)), dtype=np.int16)
        out = self._out[:n]
        saturate(y, out)
        return out

    def reset(self) -> None:
        """Forget all state (a new reply, or a barge-in), without a new filter set-up."""
        if self._stream is not None:
            self._stream.clear()
        self._flushed = False


class MixDown:
    """Interleaved int16 frames with `channels` channels to mono: one channel, or the mean."""

    def __init__(self, channels: int, select: int = -1) -> None:
        if channels <= 0:
            raise ValueError(f"channels must be positive, got {channels}")
        if select >= channels:
            raise ValueError(f"channel {select} does not exist in {channels} channels")
        self.channels = channels
        self.select = select
        self._acc = np.zeros(0, dtype=np.int32)
        self._out = np.zeros(0, dtype=np.int16)

    def process(self, frames: np.ndarray) -> np.ndarray:
        """Mono view or reused buffer; valid until the next call."""
        if self.channels == 1:
            return frames
        grid = frames[:len(frames) - len(frames) % self.channels].reshape(-1, self.channels)
        if self.select >= 0:
            return grid[:, self.select]
        n = len(grid)
        if len(self._acc) < n:
            self._acc = np.zeros(n, dtype=np.int32)
            self._out = np.zeros(n, dtype=np.int16)
        acc = self._acc[:n]
        np.sum(grid, axis=1, dtype=np.int32, out=acc)
        np.floor_divide(acc, self.channels, out=acc)
        out = self._out[:n]
        np.copyto(out, acc, casting="unsafe")
        return out
