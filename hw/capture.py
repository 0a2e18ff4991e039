"""Microphone capture: a thread that keeps the recent past in a Ring, cheaply while idle.

The device runs with short periods (`FRAME_MS`), opened non-blocking, and the thread reads
whatever whole periods ALSA holds each time it wakes. How often it wakes is the only thing
that differs between idle and a held turn: while idle it wakes once per `[audio] period_ms`
(the ring only needs the pre-roll to be there at the next press), while armed it wakes as each
period completes, so a turn streams in short frames, and `wake()` reads what is there at once
(the release). Each read stamps the ring head with the moment its newest sample was captured,
which is what the pre-roll and the end of a turn are measured against.

    ring = capture_ring(cfg)
    cap = Capture(cfg, ring)
    cap.start()
    cap.arm(lambda head, captured_at: print(head))
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import alsaaudio
import numpy as np

from config import AudioConfig
from config.rates import INPUT_RATE
from hw.pcm import (
    EPIPE,
    Backoff,
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

# The device period, and so the frame size while a turn is held: the server hears speech this
# soon, and the release waits at most this long for the period that holds it.
FRAME_MS = 20
# A period is read this long after it should have completed: the device's pointer moves a
# little after the clock says the period is full.
READ_MARGIN_S = 0.001


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
        self.period_s = FRAME_MS / 1000
        # (ring head, monotonic time its newest sample was captured), one tuple so a reader on
        # another thread gets a matching pair.
        self.landed: tuple[int, float] = (0, 0.0)
        self.overruns = 0
        self.granted = ""
        self._status = Status("capture", cfg.capture_device, on_status)
        self._notify: Callable[[int, float], None] | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def online(self) -> bool:
        return self._status.online

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=guarded(self._status, self._run),
                                        name="pttd-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        join(self._thread, "capture thread did not stop within 2 s (device read blocked)")
        self._thread = None

    def arm(self, notify: Callable[[int, float], None] | None) -> None:
        """Call notify(ring_head, captured_at) after each read while set; None disarms.

        Arming reads what the device holds at once and then follows each period."""
        self._notify = notify
        self._wake.set()

    def wake(self) -> None:
        """Read what the device holds now, without waiting for the next wake-up."""
        self._wake.set()

    def _run(self) -> None:
        backoff = Backoff()
        cfg = self.cfg
        while not self._stopping.is_set():
            try:
                # Enough periods to hold an idle interval twice over.
                periods = max(4, 2 * cfg.period_ms // FRAME_MS)
                pcm, granted = open_pcm("capture", cfg.capture_device, cfg.capture_rate,
                                        cfg.capture_channels, FRAME_MS, periods=periods,
                                        blocking=False)
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
            self.period_s = granted.period_frames / granted.rate
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
        ring, wake = self.ring, self._wake
        idle_s = self.cfg.period_ms / 1000
        period_s = self.period_s
        next_at = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            armed = self._notify is not None
            wake.wait(max(0.0, next_at - now) if armed else idle_s)
            wake.clear()
            got = self._read_all(pcm, granted, mix, resampler, ring)
            now = time.monotonic()
            if got:
                captured_at = now - max(0, pcm.avail()) / granted.rate
                self.landed = (ring.head, captured_at)
                notify = self._notify
                if notify is not None:
                    notify(ring.head, captured_at)
                next_at = captured_at + period_s + READ_MARGIN_S
            if next_at <= now:
                next_at = now + period_s

    def _read_all(self, pcm: alsaaudio.PCM, granted: Granted, mix: MixDown,
                  resampler: Resampler, ring: Ring) -> bool:
        """Move every whole period ALSA holds (at most a buffer's worth) into the ring."""
        got = False
        for _ in range(granted.buffer_frames // granted.period_frames):
            n, data = pcm.read()
            if n == EPIPE:
                self.overruns += 1
                log.debug("capture overrun (%d so far)", self.overruns)
                continue
            if n == 0:
                break
            if n < 0:
                raise DeviceError(f"read returned {n}")
            ring.write(resampler.process(mix.process(np.frombuffer(data, dtype=np.int16))))
            got = True
        return got
