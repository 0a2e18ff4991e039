"""Microphone capture: a thread that keeps the recent past in a Ring, cheaply while idle.

The device is opened non-blocking with periods of at most `PERIOD_MS` (a sound server hands
audio over once a period, so this bounds how late a held turn's speech reaches the server), and
each read takes whatever ALSA holds, a partial period too. Only how often the thread wakes
differs between idle and a held turn: while idle every `IDLE_READ_S` (the ring only needs the
pre-roll to be there at the next press, and the device buffer holds two such intervals); while
armed as each period is due, so a turn streams in period-sized frames; and `wake()` reads what
ALSA holds at once (the release). `landed` says up to when everything the device had captured
is in the ring, which is what the pre-roll and the end of a turn are measured against.

    ring = capture_ring(cfg)
    cap = Capture(cfg, ring)
    cap.start()
    cap.arm(lambda head, landed_at: print(head))
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable

import alsaaudio
import numpy as np

from config import AudioConfig
from config.rates import INPUT_RATE
from hw.backoff import Backoff
from hw.pcm import (
    BACKOFF_MAX_S,
    BACKOFF_MIN_S,
    EPIPE,
    DeviceError,
    Granted,
    Status,
    StatusCallback,
    guarded,
    join,
    open_pcm,
)
from hw.resample import MixDown, Resampler
from hw.ring import Ring

log = logging.getLogger("pttd.audio")

# The longest device period: the frame size of a held turn.
PERIOD_MS = 64
# How often the microphone is read while idle, at most (half the device buffer, if that is less).
IDLE_READ_S = 0.5


def capture_ring(cfg: AudioConfig, slack_s: float = 5.0) -> Ring:
    """A capture ring holding the pre-roll plus `slack_s` for a reader that falls behind."""
    return Ring(INPUT_RATE * cfg.preroll_ms // 1000 + round(INPUT_RATE * slack_s))


class Capture:
    """Continuous microphone capture into a Ring of mono 16 kHz samples.

    Nothing leaves the device without a press: the ring only keeps the recent past, and the
    app reads it (from the pre-roll start) while armed.
    """

    def __init__(self, cfg: AudioConfig, ring: Ring, *,
                 on_status: StatusCallback | None = None) -> None:
        self.cfg = cfg
        self.ring = ring
        self.rate = INPUT_RATE
        self.frame_s = min(cfg.period_ms, PERIOD_MS) / 1000
        # (ring head, monotonic time of the read that emptied the device), one tuple so a
        # reader on another thread gets a matching pair.
        self.landed: tuple[int, float] = (0, 0.0)
        self.overruns = 0
        self.granted = ""
        self._status = Status("capture", cfg.capture_device, on_status)
        self._notify: Callable[[int, float], None] | None = None
        self._stopping = threading.Event()
        self._wake_r = self._wake_w = -1  # a pipe that wakes the thread from its poll
        self._asked = False
        self._thread: threading.Thread | None = None

    @property
    def online(self) -> bool:
        return self._status.online

    def start(self) -> None:
        self._stopping.clear()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(target=guarded(self._status, self._run),
                                        name="pttd-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._kick()
        join(self._thread, "capture thread did not stop within 2 s (device read blocked)")
        if self._wake_r >= 0 and (self._thread is None or not self._thread.is_alive()):
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1
        self._thread = None

    def arm(self, notify: Callable[[int, float], None] | None) -> None:
        """Call notify(ring_head, landed_at) after each read that got audio, or was asked for
        by wake(), while set; None disarms. Arming reads what the device holds at once."""
        self._notify = notify
        self._kick()

    def wake(self) -> None:
        """Read what the device holds now, without waiting for the next wake-up."""
        self._asked = True
        self._kick()

    def _kick(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        backoff = Backoff(BACKOFF_MIN_S, BACKOFF_MAX_S)
        cfg = self.cfg
        while not self._stopping.is_set():
            try:
                # Room for two idle intervals: the device keeps what comes between reads.
                period_ms = min(cfg.period_ms, PERIOD_MS)
                periods = max(4, -(-2000 * IDLE_READ_S // period_ms))
                pcm, granted = open_pcm("capture", cfg.capture_device, cfg.capture_rate,
                                        cfg.capture_channels, period_ms, blocking=False,
                                        periods=int(periods))
                if cfg.capture_channel >= granted.channels:
                    pcm.close()
                    raise DeviceError(f"capture device {granted.device!r} granted "
                                      f"{granted.channels} channels; capture_channel = "
                                      f"{cfg.capture_channel} does not exist")
            except DeviceError as exc:
                self._status.down(str(exc))
                self._stopping.wait(backoff.next())
                continue
            backoff.reset()
            self.frame_s = granted.period_frames / granted.rate
            self.granted = granted.describe()
            note = "" if granted.rate == INPUT_RATE else f", resampled to {INPUT_RATE} Hz"
            self._status.up(f"capture device {granted.device!r} open: {self.granted}{note}")
            try:
                self._loop(pcm, granted)
            except (alsaaudio.ALSAAudioError, DeviceError) as exc:
                self._status.down(f"capture device {granted.device!r} lost: {exc}")
                self._stopping.wait(backoff.next())
            finally:
                pcm.close()

    def _loop(self, pcm: alsaaudio.PCM, granted: Granted) -> None:
        mix = MixDown(granted.channels, self.cfg.capture_channel)
        resampler = Resampler(granted.rate, INPUT_RATE)
        ring = self.ring
        idle_ms = 1000 * min(IDLE_READ_S, granted.buffer_frames / granted.rate / 2)
        pcm_fds = pcm.polldescriptors()
        idle, armed = select.poll(), select.poll()
        for poller in (idle, armed):
            poller.register(self._wake_r, select.POLLIN)
        for fd, mask in pcm_fds:
            armed.register(fd, mask)
        while not self._stopping.is_set():
            # A stalled device is still read once an idle interval, armed or not.
            ready = dict((armed if self._notify is not None else idle).poll(idle_ms))
            if ready.pop(self._wake_r, 0):
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 64)
            if ready:  # lets a plugin's poll descriptor (e.g. the pulse plugin's) rearm
                pcm.polldescriptors_revents([(fd, ready.get(fd, 0)) for fd, _ in pcm_fds])
            asked, self._asked = self._asked, False
            got = self._read_all(pcm, granted, mix, resampler, ring)
            landed_at = time.monotonic()
            self.landed = (ring.head, landed_at)
            notify = self._notify
            if notify is not None and (got or asked):
                notify(ring.head, landed_at)

    def _read_all(self, pcm: alsaaudio.PCM, granted: Granted, mix: MixDown,
                  resampler: Resampler, ring: Ring) -> bool:
        """Move what ALSA holds into the ring: reads until one comes back short of a period
        (at most a buffer's worth, for a device that is never empty)."""
        got = False
        for _ in range(granted.buffer_frames // granted.period_frames + 1):
            n, data = pcm.read()
            if n == EPIPE:
                self.overruns += 1
                log.debug("capture overrun (%d so far)", self.overruns)
                continue
            if n < 0:
                raise DeviceError(f"read returned {n}")
            if n:
                ring.write(resampler.process(mix.process(np.frombuffer(data, dtype=np.int16))))
                got = True
            if n < granted.period_frames:
                break
        return got
