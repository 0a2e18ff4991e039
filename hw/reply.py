"""The reply as the speaker should hear it: pure, so every rule is a unit test without ALSA.

`ReplyStream` takes reply chunks as they arrive (any rate: one resampler goes straight to the
device rate) and hands the playback thread device-rate samples to write, with an earcon mixed
in and the volume applied. It decides when a reply may start: a `Jitter` estimate remembers
how late chunks came over the last few replies, and a reply waits that long and a quarter
more (LATE_HEADROOM), no longer, so a server that sends ahead of real time starts at once
(the very first reply, with nothing learned yet, waits for `first_wait_s` of audio). Once
started, a reply plays to its end; a chunk later than the estimate gets silence instead of an
underrun, and teaches the estimate.
Time is passed in, never read, and the caller holds one lock around every call.

    stream = ReplyStream(24000, Earcons(EarconsConfig(), 24000), first_wait_s=0.08)
    stream.feed(pcm_bytes, 24000, now=time.monotonic())
    stream.end()
    out = np.zeros(480, dtype=np.int16)
    n = stream.pull(out, now=time.monotonic(), queued=0)
"""

from __future__ import annotations

import collections

import numpy as np

from hw.earcons import Earcons
from hw.resample import Resampler, saturate
from hw.ring import Fifo

# A late reply gets silence once the device holds less than the low water, so the stream keeps
# running instead of underrunning; a reply that has to wait for jitter waits this too. It starts
# small and grows by a step each time the device still ran dry inside a reply (a device that
# takes audio further ahead of playing it, or a thread that woke late), up to the ceiling.
LOW_WATER_S = 0.012
LOW_WATER_STEP_S = 0.008
LOW_WATER_MAX_S = 0.040
# Replies whose arrival jitter the start-up wait is sized from.
HISTORY = 8
# The worst lateness of a few replies understates what the next one brings (the extremes of a
# small sample): the wait covers this much more of it, so a new record only a little later
# than the last is not a gap.
LATE_HEADROOM = 1.25


class Jitter:
    """How late reply chunks arrive, relative to the most punctual chunk before them.

    A chunk that starts `media` seconds into its reply and arrives at `t` is due at
    `t - media` plus the reply's start; it is late by how much that exceeds the earliest such
    time of the chunks before it in the reply, which is how late it would be had the reply
    started from that chunk. A reply played from `wait()` after its first chunk finds a chunk
    LATE_HEADROOM times as late as any seen still in time, with `margin` (the low water) to
    spare, since that is when a late chunk gets silence. A server that sends ahead of real
    time is never late: no wait.
    Before any reply has been seen there is no estimate (`learned` is false).
    """

    def __init__(self) -> None:
        self._history: collections.deque[float] = collections.deque(maxlen=HISTORY)
        self._first_at: float | None = None
        self._earliest = 0.0
        self._late = 0.0
        self.margin = LOW_WATER_S

    def arrived(self, now: float, media_s: float) -> None:
        """A chunk whose audio starts `media_s` into the reply arrived at `now`."""
        due = now - media_s
        if self._first_at is None:
            self._first_at, self._earliest, self._late = now, due, 0.0
            return
        self._late = max(self._late, due - self._earliest)
        self._earliest = min(self._earliest, due)

    def reply_over(self) -> None:
        if self._first_at is not None:
            self._history.append(self._late)
        self._first_at = None

    @property
    def learned(self) -> bool:
        return bool(self._history)

    def wait(self) -> float:
        late = max(self._history, default=0.0)
        return late * LATE_HEADROOM + self.margin if late > 0 else 0.0

    def start_at(self) -> float | None:
        """When the current reply may start playing (None before its first chunk, or before
        any reply has been seen)."""
        if self._first_at is None or not self._history:
            return None
        return self._earliest + self.wait()


class ReplyStream:
    """Jitter buffer, resampling, earcon mixing and volume for one playback device."""

    def __init__(self, rate: int, earcons: Earcons, *, first_wait_s: float,
                 volume: float = 1.0) -> None:
        self.rate = rate
        self.earcons = earcons
        self.volume = volume
        self.first_wait = round(rate * first_wait_s)
        self.jitter = Jitter()
        self.gaps = 0            # stretches of silence a late reply needed
        self._buf = Fifo(rate * 10)
        self._resampler = Resampler(rate, rate)
        self._odd = b""
        self._media = 0          # input samples of this reply so far, at `_in_rate`
        self._fed = 0            # device samples ever buffered
        self._consumed = 0       # device samples ever handed out
        self._chunks: collections.deque[tuple[int, float]] = collections.deque()
        self._reply = self._ended = self._started = self._in_gap = False
        self._earcon: np.ndarray | None = None
        self._earcon_pos = 0
        self._mix = np.zeros(0, dtype=np.int32)
        self._gain = np.zeros(0, dtype=np.float32)

    # ------------------------------------------------------------ in

    def feed(self, pcm: bytes | memoryview, rate: int, now: float,
             received_at: float | None = None) -> None:
        """Queue mono s16le reply audio at `rate`; an odd trailing byte waits for the next feed.

        `received_at` asks for the chunk to be reported by `handed()` once it is played."""
        data: bytes | memoryview = pcm
        if self._odd:
            data = self._odd + bytes(pcm)
        whole = len(data) & ~1
        self._odd = bytes(data[whole:])
        if whole == 0:
            return
        if not self._reply or self._ended:
            self._new_reply()
        if rate != self._resampler.in_rate:
            self._push(self._resampler.flush())
            self._resampler = Resampler(rate, self.rate)
            self._media = 0
        self.jitter.arrived(now, self._media / rate)
        samples = np.frombuffer(data, dtype="<i2", count=whole // 2)
        self._media += len(samples)
        if received_at is not None:
            self._chunks.append((self._fed, received_at))
        self._push(self._resampler.process(samples))

    def end(self) -> None:
        """No more audio for this reply: what is buffered plays, then `done` turns true."""
        self._odd = b""
        self._push(self._resampler.flush())
        self._reply, self._ended = True, True

    def stop(self) -> None:
        """Barge-in: forget the reply and any earcon."""
        self._forget()
        self._earcon = None

    def play_earcon(self, name: str, *, floor: float = 0.0) -> None:
        """Mix a tone in from the next pull, at the volume, but no quieter than `floor`."""
        tone = self.earcons.get(name)
        if tone is None:
            return
        gain = max(self.volume, floor)
        if gain != 1.0:
            scaled = tone * np.float32(gain)
            tone = np.empty(len(scaled), dtype=np.int16)
            saturate(scaled, tone)
        self._earcon, self._earcon_pos = tone, 0

    def stop_earcon(self) -> bool:
        """Silence the tone; True when no reply is in the stream, so what the device still
        holds is only the tone and may be dropped."""
        self._earcon = None
        return not self._reply

    def set_rate(self, rate: int, earcons: Earcons) -> None:
        """The device granted another rate than asked: what is buffered is converted once, and
        chunks go straight to `rate` from now on."""
        self.earcons = earcons
        if rate == self.rate:
            return
        pending = np.zeros(len(self._buf), dtype=np.int16)
        self._buf.pop_into(pending)
        once = Resampler(self.rate, rate)
        converted = np.concatenate([once.process(pending), once.flush()])
        scale = rate / self.rate
        self._chunks = collections.deque(
            (max(0, round((pos - self._consumed) * scale)), at) for pos, at in self._chunks)
        self._consumed, self._fed = 0, 0
        self._push(converted)
        self.first_wait = round(self.first_wait * scale)
        self._resampler = Resampler(self._resampler.in_rate, rate)
        self._earcon = None
        self.rate = rate

    def discard(self) -> tuple[int, bool]:
        """The device is gone: drop all audio; (samples dropped, whether a reply had ended)."""
        pending, finished = len(self._buf), self._reply and self._ended
        self._buf.clear()
        self._chunks.clear()
        self._consumed = self._fed
        self._earcon = None
        if finished or not self._reply:
            self._forget()
        return pending, finished

    # ------------------------------------------------------------ state

    def ready(self, now: float) -> bool:
        """A reply plays once its start-up wait is over (or it ended), then to its end; before
        any jitter has been seen, once `first_wait_s` of it is buffered."""
        if not self._reply:
            return False
        if self._started or self._ended:
            return True
        if not self.jitter.learned:
            return len(self._buf) >= self.first_wait
        start_at = self.jitter.start_at()
        return start_at is not None and now >= start_at

    def start_in(self, now: float) -> float | None:
        """Seconds until a waiting reply may start; None when none is waiting."""
        start_at = self.jitter.start_at()
        if not self._reply or self._started or self._ended or start_at is None:
            return None
        return max(0.0, start_at - now)

    def has_work(self, now: float) -> bool:
        return self._earcon is not None or self.ready(now)

    @property
    def in_reply(self) -> bool:
        """A reply is playing: it started and has not been played out yet."""
        return self._started

    @property
    def low_water(self) -> int:
        """Device samples under which a running reply gets silence rather than an underrun."""
        return max(1, round(self.rate * self.jitter.margin))

    def underran(self) -> bool:
        """The device ran dry inside a reply: keep more in it from now on (the low water, and
        with it the start-up wait, grows a step); False once at the ceiling."""
        if self.jitter.margin >= LOW_WATER_MAX_S:
            return False
        self.jitter.margin = min(LOW_WATER_MAX_S, self.jitter.margin + LOW_WATER_STEP_S)
        return True

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def mark(self) -> tuple[int, bool]:
        """Changes whenever audio is fed or the reply ends: a sleeper's 'anything new?'."""
        return self._fed, self._ended

    @property
    def pending(self) -> bool:
        """Audio is waiting for room on the device."""
        return self._earcon is not None or (self._started and len(self._buf) > 0)

    @property
    def done(self) -> bool:
        """The reply ended and all of it was handed out."""
        return self._reply and self._ended and len(self._buf) == 0

    @property
    def active(self) -> bool:
        """A reply is under way (fed and not yet finished), or an earcon is playing."""
        return self._earcon is not None or (self._reply and not self._ended)

    @property
    def idle(self) -> bool:
        return self._earcon is None and (self.done or not self._reply)

    def finish(self) -> bool:
        """The device played it all out: True (and the stream resets) if a reply ended."""
        if not self.done:
            return False
        self._forget()
        return True

    # ------------------------------------------------------------ out

    def pull(self, out: np.ndarray, now: float, queued: int) -> tuple[int, bool]:
        """Fill `out` with what should play next; (samples filled, whether a reply starts).

        `queued` is what the device still has to play: a late reply gets silence only when it
        falls under the low water, so the device never underruns on it."""
        in_reply = self.ready(now)
        starting = in_reply and not self._started
        self._started = in_reply
        n = 0
        if in_reply:
            n = self._buf.pop_into(out)
            self._consumed += n
        low_water = self.low_water
        if n:
            self._in_gap = False
        elif in_reply and not self._ended and len(out) and queued <= low_water:
            n = min(len(out), low_water)
            out[:n] = 0
            if not self._in_gap:
                self.gaps += 1
            self._in_gap = True
        if n and self.volume != 1.0:
            self._apply_volume(out[:n])
        return self._mix_earcon(out, n), starting

    def handed(self) -> list[float]:
        """`received_at` of each reported chunk whose first sample has been handed out."""
        ready = []
        while self._chunks and self._chunks[0][0] < self._consumed:
            ready.append(self._chunks.popleft()[1])
        return ready

    # ------------------------------------------------------------ inside

    def _new_reply(self) -> None:
        """A reply begins; one fed while the last still plays out follows it without a wait."""
        self.jitter.reply_over()
        self._started = self._started and len(self._buf) > 0
        self._reply, self._ended, self._in_gap = True, False, False
        self._resampler.reset()
        self._media = 0

    def _forget(self) -> None:
        self.jitter.reply_over()
        self._buf.clear()
        self._odd = b""
        self._chunks.clear()
        self._consumed = self._fed
        self._resampler.reset()
        self._media = 0
        self._reply = self._ended = self._started = self._in_gap = False

    def _push(self, samples: np.ndarray) -> None:
        self._buf.push(samples)
        self._fed += len(samples)

    def _mix_earcon(self, out: np.ndarray, n: int) -> int:
        tone, pos = self._earcon, self._earcon_pos
        if tone is None:
            return n
        m = min(len(out), len(tone) - pos)
        self._earcon_pos = pos + m
        if self._earcon_pos >= len(tone):
            self._earcon = None
        out[n:m] = 0
        if len(self._mix) < m:
            self._mix = np.zeros(max(m, len(out)), dtype=np.int32)
        mix = self._mix[:m]
        np.add(out[:m], tone[pos:pos + m], out=mix, dtype=np.int32)
        saturate(mix, out[:m])
        return max(n, m)

    def _apply_volume(self, samples: np.ndarray) -> None:
        if len(self._gain) < len(samples):
            self._gain = np.zeros(len(samples), dtype=np.float32)
        gain = self._gain[:len(samples)]
        np.multiply(samples, self.volume, out=gain, dtype=np.float32)
        saturate(gain, samples)
