"""ALSA capture and playback threads, with recovery from xruns and from lost devices.

Each direction runs on its own thread: the default asyncio loop cannot poll the file
descriptors of ALSA's plugin devices. Wake-ups are what costs (about 100 us each on the bench
VM), so capture blocks in one read per period, and playback sleeps on a condition and writes
whatever ALSA has room for when audio arrives, never waiting on the device. Devices silently
grant the nearest rate, channel count and period, so both sides read back what was granted
and adapt (resampling through `hw.resample`); they refuse only what they cannot use.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import alsaaudio
import numpy as np

from config import AudioConfig, EarconsConfig
from hw import realtime
from hw.earcons import NAMES, Earcons
from hw.resample import MixDown, Resampler
from hw.ring import Fifo, Ring

log = logging.getLogger("pttd.audio")

CAPTURE_RATE = 16000
REPLY_RATE = 24000
PERIODS = 4
# A late reply gets this much silence at a time, once ALSA holds less than this much audio.
LOW_WATER_S = 0.020
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0
EPIPE = -errno.EPIPE

StatusCallback = Callable[[bool, str], None]

# pyalsaaudio raises ALSAAudioError("<strerror> [<device>]") with no errno attribute.
_ERRNO_BY_TEXT = {os.strerror(code): code for code in errno.errorcode}


class DeviceError(Exception):
    """A device that cannot be opened or used as configured; the message says why."""


@dataclass(frozen=True)
class Granted:
    """What a device actually agreed to after opening, which may differ from what was asked."""

    device: str
    rate: int
    channels: int
    period_frames: int
    buffer_frames: int
    format: str

    def describe(self) -> str:
        return (f"{self.rate} Hz, {self.channels} ch, {self.format}, period {self.period_frames} "
                f"frames, buffer {self.buffer_frames} frames")


def error_code(exc: BaseException) -> int | None:
    """The errno behind an ALSAAudioError, recovered from its message."""
    text = str(exc).rsplit(" [", 1)[0]
    return _ERRNO_BY_TEXT.get(text)


def holders(kind: str, proc: Path = Path("/proc"), prefix: str = "/dev/snd/pcm") -> list[str]:
    """'pid (name)' of each process with an ALSA PCM of this kind open, as far as /proc shows."""
    suffix = "c" if kind == "capture" else "p"
    found = []
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            targets = [os.readlink(fd) for fd in (pid_dir / "fd").iterdir()]
            name = (pid_dir / "comm").read_text().strip()
        except OSError:
            continue
        if any(t.startswith(prefix) and t.endswith(suffix) for t in targets):
            found.append(f"{pid_dir.name} ({name})")
    return found


def busy_note(kind: str, exc: BaseException) -> str:
    """For a 'device busy' error, who holds the device; empty for any other error."""
    if error_code(exc) != errno.EBUSY:
        return ""
    who = holders(kind)
    return f"; held by {', '.join(who)}" if who else "; busy (holder not visible in /proc)"


_ALSA_ERROR_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                       ctypes.c_int, ctypes.c_char_p)
_silent_handler = _ALSA_ERROR_HANDLER(lambda *_: None)  # module-level: libasound keeps a pointer


def _quiet_alsa_lib() -> None:
    """Stop libasound printing its own lines to stderr; our one log line per problem says it."""
    try:
        lib = ctypes.CDLL("libasound.so.2")
    except OSError:
        return
    lib.snd_lib_error_set_handler(_silent_handler)


_quiet_alsa_lib()


def open_pcm(kind: str, device: str, rate: int, channels: int,
             period_ms: int) -> tuple[alsaaudio.PCM, Granted]:
    """Open a blocking S16_LE PCM and read back what was granted; DeviceError if unusable."""
    period = max(1, rate * period_ms // 1000)
    pcm_type = alsaaudio.PCM_CAPTURE if kind == "capture" else alsaaudio.PCM_PLAYBACK
    try:
        pcm = alsaaudio.PCM(type=pcm_type, mode=alsaaudio.PCM_NORMAL, device=device, rate=rate,
                            channels=channels, format=alsaaudio.PCM_FORMAT_S16_LE,
                            periodsize=period, periods=PERIODS)
    except alsaaudio.ALSAAudioError as exc:
        raise DeviceError(f"cannot open {kind} device {device!r}: {exc}{busy_note(kind, exc)}"
                          ) from None
    info = pcm.info()
    granted = Granted(device, int(info["rate"]), int(info["channels"]),
                      int(info["period_size"]), int(info["buffer_size"]), str(info["format_name"]))
    problem = ""
    if granted.format != "S16_LE":
        problem = f"sample format {granted.format} (pttd needs S16_LE; try the plughw: device)"
    elif not 8000 <= granted.rate <= 192000:
        problem = f"rate {granted.rate} Hz (pttd needs 8000-192000 Hz)"
    elif granted.channels < 1 or granted.period_frames < 1:
        problem = f"{granted.channels} channels, period {granted.period_frames} frames"
    if problem:
        pcm.close()
        raise DeviceError(f"{kind} device {device!r} granted {problem}")
    return pcm, granted


class _Backoff:
    """Exponential delays between reopen attempts, reset by a success."""

    def __init__(self) -> None:
        self.delay = BACKOFF_MIN_S

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, BACKOFF_MAX_S)
        return delay

    def reset(self) -> None:
        self.delay = BACKOFF_MIN_S


class _Status:
    """Online/offline reporting: a callback and one log line per change, not per retry."""

    def __init__(self, kind: str, device: str, callback: StatusCallback | None) -> None:
        self.kind, self.device, self.callback = kind, device, callback
        self.online = False
        self._last_error = ""

    def up(self, message: str) -> None:
        self.online = True
        self._last_error = ""
        log.info("%s", message, extra={"PTTD_DEVICE": self.device})
        if self.callback:
            self.callback(True, message)

    def down(self, message: str) -> None:
        was_online, self.online = self.online, False
        if message == self._last_error and not was_online:
            log.debug("%s (still)", message)
            return
        self._last_error = message
        log.error("%s", message, extra={"PTTD_DEVICE": self.device})
        if self.callback:
            self.callback(False, message)


_PR_SET_NAME = 15
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _name_os_thread() -> None:
    """Give the kernel thread the Python thread's name (`top -H`, `ps -L`, per-thread CPU)."""
    if _prctl is not None:
        _prctl(_PR_SET_NAME, threading.current_thread().name.encode()[:15], 0, 0, 0)


def _guarded(status: _Status, target: Callable[[], None]) -> Callable[[], None]:
    """An audio thread body that, if a bug (ours or a callback's) kills it, says so once."""
    def run() -> None:
        _name_os_thread()
        try:
            target()
        except Exception:
            status.online = False
            log.critical("%s thread stopped by an unexpected error", status.kind, exc_info=True,
                         extra={"PTTD_DEVICE": status.device})
    return run


def capture_ring(cfg: AudioConfig, slack_s: float = 5.0) -> Ring:
    """A capture ring holding the pre-roll plus `slack_s` for a reader that falls behind."""
    return Ring(CAPTURE_RATE * cfg.preroll_ms // 1000 + round(CAPTURE_RATE * slack_s))


def _join(thread: threading.Thread | None, stuck: str) -> None:
    """Wait for a device thread, bounded: a read or write blocked in a driver must not hold up
    the daemon's exit (the thread is a daemon thread; the process ends without it)."""
    if thread is not None:
        thread.join(timeout=2.0)
        if thread.is_alive():
            log.warning(stuck)


class Capture:
    """Continuous microphone capture into a Ring of mono 16 kHz samples.

    Nothing leaves the device without a press: the ring only keeps the recent past, and the
    app reads it (from the pre-roll start) while armed.

    The thread reads every period even while idle. Sleeping between batched reads cut its idle
    CPU from 0.6 % to 0.2 % (pulse plugin, x86), but through ALSA's pulse plugin a sound server
    that went away during the sleep deadlocked the next read (libpulse's pa_memimport_free waits
    for a block the plugin still holds, under the lock the read needs), so the device was never
    reported lost.
    """

    def __init__(self, cfg: AudioConfig, ring: Ring, *,
                 on_status: StatusCallback | None = None) -> None:
        self.cfg = cfg
        self.ring = ring
        self.rate = CAPTURE_RATE
        self.period_frames = cfg.capture_rate * cfg.period_ms // 1000
        self.period_s = cfg.period_ms / 1000
        # (ring head, monotonic time) of the latest period, one tuple so a reader on another
        # thread gets a matching pair: the head alone is up to a period old.
        self.landed: tuple[int, float] = (0, 0.0)
        self.overruns = 0
        self.granted = ""
        self._status = _Status("capture", cfg.capture_device, on_status)
        self._notify: Callable[[int, float], None] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def online(self) -> bool:
        return self._status.online

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=_guarded(self._status, self._run),
                                        name="pttd-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        _join(self._thread, "capture thread did not stop within 2 s (device read blocked)")
        self._thread = None

    def arm(self, notify: Callable[[int, float], None] | None) -> None:
        """Call notify(ring_head, t_read) after each period while set; None disarms."""
        self._notify = notify

    def _run(self) -> None:
        backoff = _Backoff()
        while not self._stopping.is_set():
            try:
                pcm, granted = open_pcm("capture", self.cfg.capture_device, self.cfg.capture_rate,
                                        self.cfg.capture_channels, self.cfg.period_ms)
                if self.cfg.capture_channel >= granted.channels:
                    pcm.close()
                    raise DeviceError(f"capture device {granted.device!r} granted "
                                      f"{granted.channels} channels; capture_channel = "
                                      f"{self.cfg.capture_channel} does not exist")
            except DeviceError as exc:
                self._status.down(str(exc))
                self._stopping.wait(backoff.next())
                continue
            backoff.reset()
            self.period_frames = granted.period_frames
            self.period_s = granted.period_frames / granted.rate
            self.granted = granted.describe()
            note = "" if granted.rate == CAPTURE_RATE else f", resampled to {CAPTURE_RATE} Hz"
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
        resampler = Resampler(granted.rate, CAPTURE_RATE)
        ring = self.ring
        while not self._stopping.is_set():
            n, data = pcm.read()
            if n == EPIPE:
                self.overruns += 1
                log.debug("capture overrun (%d so far)", self.overruns)
                continue
            if n <= 0:
                raise DeviceError(f"read returned {n}")
            t_read = time.monotonic()
            ring.write(resampler.process(mix.process(np.frombuffer(data, dtype=np.int16))))
            self.landed = (ring.head, t_read)
            notify = self._notify
            if notify is not None:
                notify(ring.head, t_read)


class Playback:
    """Reply playback through a jitter buffer, with earcons mixed into the same stream.

    The thread sleeps on a condition while there is nothing to play (no periodic wake-ups),
    starts a reply once `prebuffer_ms` is buffered or the reply has ended, then hands audio to
    ALSA as it arrives (the device's buffer, `PERIODS` periods, is the jitter buffer), fills gaps
    inside a reply with silence, and drains at the end so the last word is heard.

    The PCM stays open between replies, stopped (dropped) so it holds no audio: measured through
    the pulse plugin, the idle process used 0.08 ms CPU per second with it open against 0.10 ms/s
    before it was opened (noise), and a stopped hardware PCM runs nothing at all. Staying open
    also avoids reopen latency and any click from a device reconfiguring.
    """

    def __init__(self, cfg: AudioConfig, earcons: EarconsConfig, *,
                 on_status: StatusCallback | None = None,
                 on_drained: Callable[[], None] | None = None) -> None:
        self.cfg = cfg
        self.underruns = 0
        self.playing = False
        self.granted = ""
        self.rate = cfg.playback_rate
        self.on_written: Callable[[float, float], None] | None = None
        self.on_prebuffered: Callable[[float, float], None] | None = None
        self._on_drained = on_drained
        self._status = _Status("playback", cfg.playback_device, on_status)
        self._earcons_cfg = earcons
        self._earcons = Earcons(earcons, self.rate)
        self._volume = cfg.volume
        self._cond = threading.Condition()
        self._in = Fifo(REPLY_RATE * 10)
        self._odd = b""
        self._fed = 0
        self._consumed = 0
        self._chunks: collections.deque[tuple[int, float]] = collections.deque()
        self._reply = False
        self._started = False
        self._ended = False
        self._drop = False
        self._stopping = False
        self._earcon: np.ndarray | None = None
        self._earcon_pos = 0
        self._earcon_floor = 0.0
        self._prebuffer = REPLY_RATE * cfg.prebuffer_ms // 1000
        self._thread: threading.Thread | None = None
        self._pcm: alsaaudio.PCM | None = None
        # Set by _open() for the granted device, used only by the playback thread:
        self._granted: Granted
        self._resampler: Resampler
        self._dev: Fifo  # reply audio already at the device rate
        self._inbuf: np.ndarray
        self._out: np.ndarray
        self._mix: np.ndarray
        self._gain: np.ndarray
        self._period_s: float
        self._low_water: int  # frames: a late reply gets silence when ALSA holds less
        self._in_gap = False
        self._started_at: float | None = None  # monotonic time of the stream's first write
        self._written = 0                       # frames written since then

    @property
    def online(self) -> bool:
        return self._status.online

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=_guarded(self._status, self._run),
                                        name="pttd-playback", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        _join(self._thread, "playback thread did not stop within 2 s (device write blocked)")
        self._thread = None

    def feed(self, pcm: bytes | memoryview, received_at: float | None = None) -> None:
        """Queue 24 kHz mono s16le reply audio; an odd trailing byte waits for the next feed."""
        with self._cond:
            data: bytes | memoryview = pcm
            if self._odd:
                data = self._odd + bytes(pcm)
            whole = len(data) & ~1
            self._odd = bytes(data[whole:])
            if whole == 0:
                return
            samples = np.frombuffer(data, dtype=np.int16, count=whole // 2)
            if received_at is not None and (self.on_written is not None or
                                            self.on_prebuffered is not None):
                self._chunks.append((self._fed, received_at))
            self._in.push(samples)
            self._fed += len(samples)
            if not self._reply or self._ended:
                self._reply, self._ended = True, False
            self._cond.notify()

    def end_reply(self) -> None:
        """No more audio for this reply: play what is buffered, then call on_drained."""
        with self._cond:
            if self._odd:
                log.debug("reply ended on half a sample; dropped the odd byte")
                self._odd = b""
            self._reply, self._ended = True, True
            self._cond.notify()

    def stop_now(self) -> None:
        """Barge-in: forget the reply and any earcon; the thread drops the ALSA buffer."""
        with self._cond:
            self._in.clear()
            self._odd = b""
            self._chunks.clear()
            self._consumed = self._fed
            self._reply = self._ended = self._started = False
            self._earcon = None
            self._drop = True
            self._cond.notify()

    def play_earcon(self, name: str, *, floor: float = 0.0) -> None:
        """Mix a tone into the output now, unless [earcons] switches it off; while it plays
        the volume is at least `floor` (a ringing timer is heard however low the volume)."""
        tone = self._earcons.get(name)
        if tone is None:
            return
        with self._cond:
            self._earcon, self._earcon_pos, self._earcon_floor = tone, 0, floor
            self._cond.notify()

    def stop_earcon(self) -> None:
        """Silence the tone now (a press stops the alarm); with no reply playing, what ALSA
        still holds of it is dropped too."""
        with self._cond:
            self._earcon = None
            if not self._reply:
                self._drop = True
            self._cond.notify()

    def set_volume(self, volume: float) -> None:
        self._volume = volume

    def set_earcons(self, cfg: EarconsConfig) -> None:
        self._earcons_cfg = cfg
        self._earcons = Earcons(cfg, self.rate)

    def _reply_ready(self) -> bool:
        """A reply plays once prebuffered (or complete), then to its end without waiting again."""
        return self._reply and (self._started or self._ended or
                                len(self._in) >= self._prebuffer)

    def _has_work(self) -> bool:
        return self._earcon is not None or self._reply_ready()

    def _run(self) -> None:
        realtime.claim("playback")
        backoff = _Backoff()
        while True:
            with self._cond:
                while not (self._stopping or self._drop or
                           (self._pcm is not None and self._has_work())):
                    if self._pcm is None:
                        break
                    self._cond.wait()
                if self._stopping:
                    break
                drop, self._drop = self._drop, False
            if self._pcm is None:
                if not self._open():
                    self._discard_while_offline()
                    with self._cond:
                        self._cond.wait_for(lambda: self._stopping, timeout=backoff.next())
                    continue
                backoff.reset()
            try:
                if drop:
                    self._pcm.drop()
                    self._reset_stream()
                else:
                    self._service()
            except alsaaudio.ALSAAudioError as exc:
                self._lost(exc)
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping, timeout=backoff.next())
        if self._pcm is not None:
            self._pcm.close()
            self._pcm = None

    def _open(self) -> bool:
        try:
            pcm, granted = open_pcm("playback", self.cfg.playback_device, self.cfg.playback_rate,
                                    1, self.cfg.period_ms)
        except DeviceError as exc:
            self._status.down(str(exc))
            return False
        if granted.channels != 1:
            pcm.close()
            self._status.down(f"playback device {granted.device!r} granted {granted.channels} "
                              "channels instead of mono; use a plug device")
            return False
        self._pcm = pcm
        self._granted = granted
        self.granted = granted.describe()
        if granted.rate != self.rate:
            self.rate = granted.rate
            self._earcons = Earcons(self._earcons_cfg, self.rate)
        self._resampler = Resampler(REPLY_RATE, granted.rate)
        self._dev = Fifo(granted.period_frames * 8)
        self._inbuf = np.zeros(math.ceil(granted.period_frames * REPLY_RATE / granted.rate),
                               dtype=np.int16)
        self._out = np.zeros(granted.buffer_frames, dtype=np.int16)
        self._mix = np.zeros(granted.buffer_frames, dtype=np.int32)
        self._gain = np.zeros(granted.buffer_frames, dtype=np.float32)
        self._period_s = granted.period_frames / granted.rate
        self._low_water = max(1, round(granted.rate * LOW_WATER_S))
        self._in_gap = False
        note = "" if granted.rate == REPLY_RATE else f", resampled from {REPLY_RATE} Hz"
        for name in NAMES:
            self._earcons.get(name)
        self._status.up(f"playback device {granted.device!r} open: {self.granted}{note}")
        return True

    def _lost(self, exc: BaseException) -> None:
        if self._pcm is not None:
            with contextlib.suppress(alsaaudio.ALSAAudioError):
                self._pcm.close()
            self._pcm = None
        self._status.down(f"playback device {self.cfg.playback_device!r} lost: {exc}")
        self._discard_while_offline()

    def _discard_while_offline(self) -> None:
        """Audio cannot wait for a device that may be gone for minutes: drop it, end the reply."""
        with self._cond:
            pending = len(self._in)
            finished = self._reply and self._ended
            self._in.clear()
            self._chunks.clear()
            self._consumed = self._fed
            self._earcon = None
            if finished or not self._reply:
                self._reply = self._ended = self._started = False
        if pending:
            log.warning("playback device offline: dropped %.1f s of reply audio",
                        pending / REPLY_RATE)
        self.playing = False
        if finished and self._on_drained:
            self._on_drained()

    def _reset_stream(self) -> None:
        self._started_at = None
        self._resampler.reset()
        self._dev.clear()
        self.playing = False
        self._in_gap = False

    def _take(self, out: np.ndarray) -> int:
        """Fill `out` from the reply (resampled to the device rate); return how many."""
        if self._resampler.passthrough:
            with self._cond:
                n = self._in.pop_into(out)
                self._consumed += n
            return n
        n = self._dev.pop_into(out)
        while n < len(out):
            with self._cond:
                k = self._in.pop_into(self._inbuf)
                self._consumed += k
                ending = self._ended and len(self._in) == 0
            if k:
                self._dev.push(self._resampler.process(self._inbuf[:k]))
            elif ending:
                tail = self._resampler.flush()
                if not len(tail):
                    break
                self._dev.push(tail)
            else:
                break
            n += self._dev.pop_into(out[n:])
        return n

    def _reply_done(self) -> bool:
        return (self._ended and len(self._in) == 0 and len(self._dev) == 0
                and self._resampler.drained)

    def _space(self) -> tuple[int, int]:
        """(frames ALSA takes now without blocking, frames it still has to play).

        What is left to play is the smaller of what ALSA reports and what the clock says since
        the stream started: a sound server reports room only once per period it consumed, so
        between its reports ALSA's figure overstates what is left by up to a period.
        """
        assert self._pcm is not None
        buffer = self._granted.buffer_frames
        # Only a running stream holds audio: after drop() the PCM sits in SETUP with avail() 0
        # until the next write prepares it, and after an underrun the write recovers it.
        if self._pcm.state() != alsaaudio.PCM_STATE_RUNNING:
            self._started_at = None
            return buffer, 0
        avail = self._pcm.avail()
        if avail < 0:
            self._started_at = None
            return buffer, 0
        avail = min(avail, buffer)
        queued = buffer - avail
        if self._started_at is not None:
            played = round((time.monotonic() - self._started_at) * self.rate)
            queued = min(queued, max(0, self._written - played))
        return avail, queued

    def _service(self) -> None:
        """One pass: write all the audio ALSA has room for, then sleep until there is more.

        Reply audio goes to ALSA as soon as it arrives, so ALSA's own buffer is the jitter
        buffer and the thread wakes once per received chunk (once per half buffer in a burst)
        instead of once per period. A reply that is late gets silence only when ALSA is about
        to run dry, so the stream keeps running and no device underrun follows.
        """
        room, queued = self._space()
        with self._cond:
            in_reply = self._reply_ready()
            starting = in_reply and not self._started
            self._started = in_reply
            seen = (self._fed, self._ended)
            ended = self._ended
        out = self._out[:room]
        n = self._take(out) if in_reply and room else 0
        if n:
            self._in_gap = False
        elif in_reply and room and not ended and queued <= self._low_water:
            n = min(room, self._low_water)
            out[:n] = 0
            if not self._in_gap:
                self.underruns += 1
                log.debug("reply audio late: filled with silence (%d gaps so far)",
                          self.underruns)
            self._in_gap = True
        floor = self._earcon_floor if self._earcon is not None else 0.0
        n = self._mix_earcon(out, n)
        if n:
            self._apply_volume(out[:n], floor)
            self._write(out[:n], starting)
            queued += n
        with self._cond:
            done = in_reply and self._reply and self._reply_done()
            idle = self._earcon is None and (done or not self._reply)
            pending = self._earcon is not None or (
                in_reply and (len(self._in) > 0 or len(self._dev) > 0))
        if idle:
            self._finish(done)
        else:
            self._sleep(pending, queued, seen)

    def _sleep(self, pending: bool, queued: int, seen: tuple[int, bool]) -> None:
        """Until ALSA has room for what is pending, or new audio, or the reply runs late."""
        with self._cond:
            if self._drop or self._stopping:
                return
            if pending:
                # ALSA is full: nothing to do until half its buffer has played (or a barge-in).
                half = self._granted.buffer_frames // 2
                self._cond.wait_for(lambda: self._drop or self._stopping,
                                    timeout=max(queued - half, self._low_water) / self.rate)
            elif (self._fed, self._ended) == seen:
                left = queued - self._low_water
                if left > 0:
                    self._cond.wait(left / self.rate)

    def _mix_earcon(self, out: np.ndarray, n: int) -> int:
        with self._cond:
            tone, pos = self._earcon, self._earcon_pos
            if tone is None:
                return n
            m = min(len(out), len(tone) - pos)
            self._earcon_pos = pos + m
            if self._earcon_pos >= len(tone):
                self._earcon = None
        out[n:m] = 0
        mix = self._mix[:m]
        np.add(out[:m], tone[pos:pos + m], out=mix, dtype=np.int32)
        np.clip(mix, -32768, 32767, out=mix)
        np.copyto(out[:m], mix, casting="unsafe")
        return max(n, m)

    def _apply_volume(self, samples: np.ndarray, floor: float = 0.0) -> None:
        volume = max(self._volume, floor)
        if volume == 1.0:
            return
        gain = self._gain[:len(samples)]
        np.multiply(samples, volume, out=gain, dtype=np.float32)
        np.rint(gain, out=gain)
        np.clip(gain, -32768, 32767, out=gain)
        np.copyto(samples, gain, casting="unsafe")

    def _write(self, samples: np.ndarray, starting: bool) -> None:
        """Write what ALSA has room for (so this never blocks); report chunks handed over."""
        assert self._pcm is not None
        began = time.monotonic()
        written = self._pcm.write(samples)
        if written == EPIPE:
            self.underruns += 1
            log.debug("playback underrun (%d so far)", self.underruns)
            self._started_at = None
            began = time.monotonic()
            written = self._pcm.write(samples)
        if written < 0:
            raise alsaaudio.ALSAAudioError(f"write returned {written}")
        if self._started_at is None:
            self._started_at, self._written = began, 0
        self._written += len(samples)
        t = time.monotonic()
        self.playing = True
        if self._chunks:
            with self._cond:
                consumed = self._consumed
                ready = []
                while self._chunks and self._chunks[0][0] < consumed:
                    ready.append(self._chunks.popleft()[1])
            if starting and ready and self.on_prebuffered is not None:
                # The chunks that waited for the prebuffer: their wait is reported once, as
                # the reply's prebuffer wait, not as each chunk's handover latency.
                self.on_prebuffered(ready[0], t)
                ready = []
            if self.on_written is not None:
                for received_at in ready:
                    self.on_written(received_at, t)

    def _finish(self, reply_done: bool) -> None:
        """Let ALSA play out what it holds (cut short by new work), then idle the stream."""
        pcm = self._pcm
        assert pcm is not None
        buffer = self._granted.buffer_frames
        while self.playing and pcm.state() == alsaaudio.PCM_STATE_RUNNING:
            avail = pcm.avail()
            if avail < 0 or avail >= buffer:
                break
            with self._cond:
                if self._cond.wait_for(self._interrupted,
                                       timeout=min((buffer - avail) / self.rate, self._period_s)):
                    return
        pcm.drop()
        self._reset_stream()
        if reply_done:
            with self._cond:
                if not (self._ended and len(self._in) == 0):
                    return
                self._reply = self._ended = self._started = False
            if self._on_drained:
                self._on_drained()

    def _interrupted(self) -> bool:
        return (self._drop or self._stopping or self._earcon is not None or
                (self._reply and not self._ended))
