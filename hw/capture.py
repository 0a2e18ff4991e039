"""Microphone capture: the recent past kept in a Ring cheaply while idle, read by the event loop
while a turn is held.

The device is opened non-blocking with periods of at most `PERIOD_MS` (a sound server hands
audio over once a period, so this bounds how late a held turn's speech reaches the server), and
each read takes whatever ALSA holds, a partial period too. While idle a thread reads it every
`IDLE_READ_S`: the ring only needs the pre-roll to be there at the next press, and the device
buffer holds two such intervals. While armed the event loop reads it itself, as each period is
due: the loop wakes for every period anyway to send it, and a thread that read it and then woke
the loop would make two wake-ups of each one. The thread sleeps meanwhile, until the turn ends or
the loop hands a failed device back to it to reopen (and hand over again if still armed).
`wake()` reads what ALSA holds at once (the release). `landed` says up to when everything the
device had captured is in the ring, which is what the pre-roll and the end of a turn are
measured against.

    ring = capture_ring(cfg)
    cap = Capture(cfg, ring)
    cap.start()
    # on the event loop, while a turn is held:
    cap.arm(lambda head, landed_at: print(head))
    cap.arm(None)
"""

from __future__ import annotations

import asyncio
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
# A device whose poll reports one of these while a read gets nothing has failed: left to the
# loop, it would wake it again at once, forever.
_FAILED = select.POLLERR | select.POLLHUP | select.POLLNVAL

Notify = Callable[[int, float], None]


def capture_ring(cfg: AudioConfig, slack_s: float = 5.0) -> Ring:
    """A capture ring holding the pre-roll plus `slack_s` for a reader that falls behind."""
    return Ring(INPUT_RATE * cfg.preroll_ms // 1000 + round(INPUT_RATE * slack_s))


class _Device:
    """An open PCM and what reading it takes. One thread at a time reads it: the capture
    thread, or the event loop while that holds it (`Capture._held`)."""

    def __init__(self, pcm: alsaaudio.PCM, granted: Granted, channel: int) -> None:
        self.pcm, self.granted = pcm, granted
        self.mix = MixDown(granted.channels, channel)
        self.resampler = Resampler(granted.rate, INPUT_RATE)
        self.fds: list[tuple[int, int]] = pcm.polldescriptors()
        self.poller = select.poll()  # the loop's readiness carries no revents: this gets them
        for fd, mask in self.fds:
            self.poller.register(fd, mask)
        self.idle_s = min(IDLE_READ_S, granted.buffer_frames / granted.rate / 2)
        self.unwatched = False  # a descriptor epoll refused: read on every pass of the loop
        self.spinning = False


class Capture:
    """Continuous microphone capture into a Ring of mono 16 kHz samples.

    Nothing leaves the device without a press: the ring only keeps the recent past, and the
    app reads it (from the pre-roll start) while armed. `arm()` and `wake()` are called on the
    event loop that reads while armed; `start()` and `stop()` on any thread.
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
        self._stopping = threading.Event()
        self._wake_r = self._wake_w = -1  # a pipe that wakes the thread from its poll
        self._thread: threading.Thread | None = None
        # Who reads the device. The thread reads only under the lock and while `_held` is
        # None; the loop sets `_held` under the lock, so it never takes a device mid-read.
        self._lock = threading.Lock()
        self._dev: _Device | None = None        # the open device (the thread opens it)
        self._held: _Device | None = None       # the device the loop reads, while armed
        self._failure: BaseException | None = None  # what the loop handed back with it
        self._notify: Notify | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stall: asyncio.TimerHandle | None = None
        self._asked = False

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

    def arm(self, notify: Notify | None) -> None:
        """On the event loop: read the device on this loop and call notify(ring_head,
        landed_at) after each read that got audio, or was asked for by wake(), while set;
        None disarms and gives the device back to the thread. Arming reads what the device
        holds at once; notify is never called from inside arm() or wake()."""
        self._asked = False
        if notify is None:
            with self._lock:
                self._notify, held, self._held = None, self._held, None
            if held is not None:
                self._release(held)
                self._kick()
            return
        loop = asyncio.get_running_loop()
        with self._lock:
            self._notify, self._loop = notify, loop
        self._take_over()

    def wake(self) -> None:
        """Read what the device holds now, without waiting for the next wake-up."""
        self._asked = True
        dev, loop = self._held, self._loop
        if dev is None or loop is None:
            self._kick()  # the thread reads it, or the loop once it holds the device again
        elif self._read_on_loop(dev) is not None:
            loop.call_soon(self._announce, dev)

    def _kick(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    # ------------------------------------------------------------ the capture thread

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
            dev = _Device(pcm, granted, cfg.capture_channel)
            try:
                self._serve(dev)
            except (alsaaudio.ALSAAudioError, DeviceError) as exc:
                self._status.down(f"capture device {granted.device!r} lost: {exc}")
                self._stopping.wait(backoff.next())
            finally:
                self._close(dev)

    def _serve(self, dev: _Device) -> None:
        """Read the device once an idle interval, or when woken, while the loop does not hold
        it; offer it to the loop while armed; raise what the loop handed back."""
        with self._lock:
            self._dev = dev
            loop = self._loop if self._notify is not None else None
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop reads nothing any more
                loop.call_soon_threadsafe(self._take_over)
        waker = select.poll()
        waker.register(self._wake_r, select.POLLIN)
        idle_ms = 1000 * dev.idle_s
        while not self._stopping.is_set():
            waker.poll(-1 if self._held is not None else idle_ms)
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 64)
            with self._lock:
                failure, self._failure = self._failure, None
                if failure is not None:
                    raise failure
                if self._held is None:
                    self._read(dev)

    def _close(self, dev: _Device) -> None:
        """Close the device, on the loop if the loop still holds it (stopped while armed)."""
        with self._lock:
            self._dev, self._failure = None, None
            held, loop = self._held, self._loop
        if held is dev and loop is not None:
            try:
                loop.call_soon_threadsafe(self._drop, dev)
            except RuntimeError:  # the loop is closed: nobody reads the device any more
                pass
            else:
                return
        dev.pcm.close()

    # ------------------------------------------------------------ the event loop, while armed

    def _take_over(self) -> None:
        """Hold the open device on the loop, if armed and it is free, and read it at once."""
        loop = self._loop
        with self._lock:
            dev = self._dev
            if self._notify is None or loop is None or dev is None or self._failure is not None:
                return
            taken, self._held = self._held is None, dev
        if taken:
            for fd, _ in dev.fds:
                try:
                    loop.add_reader(fd, self._readable, dev)
                except PermissionError:  # a plain file, e.g. the null plugin's /dev/null
                    dev.unwatched = True
            self._stall = loop.call_later(dev.idle_s, self._stalled, dev, loop)
            if dev.unwatched and not dev.spinning:
                dev.spinning = True
                loop.call_soon(self._spin, dev, loop)
        got = self._read_on_loop(dev)
        if got or (got is not None and self._asked):
            loop.call_soon(self._announce, dev)

    def _readable(self, dev: _Device) -> None:
        if self._held is dev and self._read_on_loop(dev):
            self._announce(dev)

    def _spin(self, dev: _Device, loop: asyncio.AbstractEventLoop) -> None:
        """For a descriptor that is always ready, as poll(2) says a plain file is."""
        self._readable(dev)
        dev.spinning = self._held is dev
        if dev.spinning:
            loop.call_soon(self._spin, dev, loop)

    def _stalled(self, dev: _Device, loop: asyncio.AbstractEventLoop) -> None:
        """A stalled device is still read once an idle interval while the loop holds it."""
        if self._held is not dev:
            return
        left = self.landed[1] + dev.idle_s - time.monotonic()
        if left <= 0:
            self._readable(dev)
            left = dev.idle_s
        if self._held is dev:
            self._stall = loop.call_later(left, self._stalled, dev, loop)

    def _announce(self, dev: _Device) -> None:
        notify = self._notify
        if self._held is not dev or notify is None:
            return  # disarmed, or handed back, since the read
        self._asked = False
        try:
            notify(*self.landed)
        except Exception as exc:  # the thread's guard reports it, as its own crash
            if not self._hand_back(dev, exc):
                raise  # notify disarmed first: the loop's exception handler reports it

    def _read_on_loop(self, dev: _Device) -> bool | None:
        """Read the held device: whether audio came; None when it failed and went back to the
        thread, which reports the failure and reopens it."""
        try:
            ready = dict(dev.poller.poll(0))
            revents = 0
            if ready:  # lets a plugin's poll descriptor (e.g. the pulse plugin's) rearm
                revents = dev.pcm.polldescriptors_revents(
                    [(fd, ready.get(fd, 0)) for fd, _ in dev.fds])
            overruns = self.overruns
            got = self._read(dev)
            if revents & _FAILED and not got and self.overruns == overruns:
                raise DeviceError(f"poll reported an error (revents {revents:#x})")
        except Exception as exc:  # the thread reports it: as a lost device, or as a crash
            self._hand_back(dev, exc)
            return None
        return got

    def _hand_back(self, dev: _Device, failure: BaseException) -> bool:
        """Give the device back to the thread, which raises `failure`; False if the loop did
        not hold it (any more)."""
        with self._lock:
            if self._held is not dev:
                return False
            self._held = None
            if self._dev is dev:  # else the thread has stopped: the device is being closed
                self._failure = failure
        self._release(dev)
        self._kick()
        return True

    def _release(self, dev: _Device) -> None:
        loop = self._loop
        if loop is not None:
            for fd, _ in dev.fds:
                loop.remove_reader(fd)
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _drop(self, dev: _Device) -> None:
        with self._lock:
            held = self._held is dev
            if held:
                self._held = None
        if held:
            self._release(dev)
        dev.pcm.close()

    # ------------------------------------------------------------ reading, on either side

    def _read(self, dev: _Device) -> bool:
        got = self._read_all(dev)
        self.landed = (self.ring.head, time.monotonic())
        return got

    def _read_all(self, dev: _Device) -> bool:
        """Move what ALSA holds into the ring: reads until one comes back short of a period
        (at most a buffer's worth, for a device that is never empty)."""
        granted, ring = dev.granted, self.ring
        got = False
        for _ in range(granted.buffer_frames // granted.period_frames + 1):
            n, data = dev.pcm.read()
            if n == EPIPE:
                self.overruns += 1
                log.debug("capture overrun (%d so far)", self.overruns)
                continue
            if n < 0:
                raise DeviceError(f"read returned {n}")
            if n:
                ring.write(dev.resampler.process(dev.mix.process(np.frombuffer(data, np.int16))))
                got = True
            if n < granted.period_frames:
                break
        return got
