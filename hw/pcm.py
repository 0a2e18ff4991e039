"""Opening ALSA PCMs, and what the capture and playback threads share around that.

Devices silently grant the nearest rate, channel count and period, so `open_pcm` reads back
what was granted and refuses only what pttd cannot use; a busy device names who holds it (from
/proc); libasound's own stderr lines are silenced, since one log line per problem says it.
`Status` gives both device threads the same reporting; `hw.backoff.Backoff` their retry rhythm.

    pcm, granted = open_pcm("capture", "default", 16000, 1, 200)
    print(granted.describe())
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import alsaaudio

log = logging.getLogger("pttd.audio")

PERIODS = 4
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


def open_pcm(kind: str, device: str, rate: int, channels: int, period_ms: int, *,
             periods: int = PERIODS, blocking: bool = True) -> tuple[alsaaudio.PCM, Granted]:
    """Open an S16_LE PCM and read back what was granted; DeviceError if unusable."""
    period = max(1, rate * period_ms // 1000)
    pcm_type = alsaaudio.PCM_CAPTURE if kind == "capture" else alsaaudio.PCM_PLAYBACK
    mode = alsaaudio.PCM_NORMAL if blocking else alsaaudio.PCM_NONBLOCK
    try:
        pcm = alsaaudio.PCM(type=pcm_type, mode=mode, device=device, rate=rate,
                            channels=channels, format=alsaaudio.PCM_FORMAT_S16_LE,
                            periodsize=period, periods=periods)
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


class Status:
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


def name_os_thread() -> None:
    """Give the kernel thread the Python thread's name (`top -H`, `ps -L`, per-thread CPU)."""
    if _prctl is not None:
        _prctl(_PR_SET_NAME, threading.current_thread().name.encode()[:15], 0, 0, 0)


def guarded(status: Status, target: Callable[[], None]) -> Callable[[], None]:
    """An audio thread body that, if a bug (ours or a callback's) kills it, says so once."""
    def run() -> None:
        name_os_thread()
        try:
            target()
        except Exception:
            status.online = False
            log.critical("%s thread stopped by an unexpected error", status.kind, exc_info=True,
                         extra={"PTTD_DEVICE": status.device})
    return run


def join(thread: threading.Thread | None, stuck: str) -> None:
    """Wait for a device thread, bounded: a read or write blocked in a driver must not hold up
    the daemon's exit (the thread is a daemon thread; the process ends without it)."""
    if thread is not None:
        thread.join(timeout=2.0)
        if thread.is_alive():
            log.warning(stuck)


