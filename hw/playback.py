"""Reply playback: the thread that moves a `ReplyStream`'s samples into an ALSA PCM.

Every decision (when a reply starts, what fills a gap, mixing, volume) is the stream's; this
shell only asks ALSA how much room it has, writes, and sleeps. It sleeps on a condition while
there is nothing to play and writes whatever ALSA has room for when audio arrives, never
waiting on the device, so ALSA's own buffer carries the reply between chunks. The PCM stays
open between replies, stopped (dropped) so it holds no audio: that avoids reopen latency and
any click from a device reconfiguring. While idle the thread looks at the PCM's state every
IDLE_CHECK_S: a card unplugged between replies is let go at once (the kernel cannot finish
removing a card while a process holds it open), reported, and reopened when it returns.

    pb = Playback(AudioConfig(), EarconsConfig(), on_drained=lambda: print("done"))
    pb.start()
    pb.feed(reply_pcm_24k, received_at=time.monotonic())
    pb.end_reply()
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import alsaaudio
import numpy as np

from config import AudioConfig, EarconsConfig
from config.rates import OUTPUT_RATE
from hw import realtime
from hw.backoff import Backoff
from hw.earcons import NAMES, Earcons
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
from hw.reply import ReplyStream

log = logging.getLogger("pttd.audio")

IDLE_CHECK_S = 2.0


class Playback:
    """Reply playback through a jitter buffer, with earcons mixed into the same stream."""

    def __init__(self, cfg: AudioConfig, earcons: EarconsConfig, *,
                 on_status: StatusCallback | None = None,
                 on_drained: Callable[[], None] | None = None) -> None:
        self.cfg = cfg
        self.playing = False
        self.granted = ""
        self.rate = cfg.playback_rate
        self.on_written: Callable[[float, float], None] | None = None
        self.on_prebuffered: Callable[[float, float], None] | None = None
        self._alsa_underruns = 0
        self._on_drained = on_drained
        self._status = Status("playback", cfg.playback_device, on_status)
        self._earcons_cfg = earcons
        self._stream = ReplyStream(self.rate, Earcons(earcons, self.rate),
                                   first_wait_s=cfg.prebuffer_ms / 1000, volume=cfg.volume)
        self._cond = threading.Condition()
        self._drop = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pcm: alsaaudio.PCM | None = None
        # Set by _open() for the granted device, used only by the playback thread:
        self._granted: Granted
        self._out = np.zeros(0, dtype=np.int16)
        self._started_at: float | None = None  # monotonic time of the stream's first write
        self._written = 0                       # frames written since then

    @property
    def online(self) -> bool:
        return self._status.online

    @property
    def underruns(self) -> int:
        """Gaps a late reply needed plus device underruns."""
        return self._stream.gaps + self._alsa_underruns

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=guarded(self._status, self._run),
                                        name="pttd-playback", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        join(self._thread, "playback thread did not stop within 2 s (device write blocked)")
        self._thread = None

    def feed(self, pcm: bytes | memoryview, received_at: float | None = None,
             rate: int = OUTPUT_RATE) -> None:
        """Queue mono s16le reply audio at `rate`; an odd trailing byte waits for the next feed."""
        report = received_at is not None and (self.on_written is not None or
                                              self.on_prebuffered is not None)
        with self._cond:
            self._stream.feed(pcm, rate, time.monotonic(), received_at if report else None)
            self._cond.notify()

    def end_reply(self) -> None:
        """No more audio for this reply: play what is buffered, then call on_drained."""
        with self._cond:
            self._stream.end()
            self._cond.notify()

    def stop_now(self) -> None:
        """Barge-in: forget the reply and any earcon; the thread drops the ALSA buffer."""
        with self._cond:
            self._stream.stop()
            self._drop = True
            self._cond.notify()

    def play_earcon(self, name: str, *, floor: float = 0.0) -> None:
        """Mix a tone into the output now, unless [earcons] switches it off; the tone plays at
        no less than `floor` however low the volume (a ringing timer must be heard)."""
        with self._cond:
            self._stream.play_earcon(name, floor=floor)
            self._cond.notify()

    def stop_earcon(self) -> None:
        """Silence the tone now (a press stops the alarm); with no reply playing, what ALSA
        still holds of it is dropped too."""
        with self._cond:
            if self._stream.stop_earcon():
                self._drop = True
            self._cond.notify()

    def set_volume(self, volume: float) -> None:
        with self._cond:
            self._stream.volume = volume

    def set_earcons(self, cfg: EarconsConfig) -> None:
        self._earcons_cfg = cfg
        with self._cond:
            self._stream.earcons = Earcons(cfg, self.rate)

    def _run(self) -> None:
        realtime.claim("playback")
        backoff = Backoff(BACKOFF_MIN_S, BACKOFF_MAX_S)
        while True:
            with self._cond:
                present = self._wait_for_work()
                if self._stopping:
                    break
                drop, self._drop = self._drop, False
            if not present:
                self._lost(DeviceError("the device was disconnected"))
                continue
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
                    self._reset_device()
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
        earcons = Earcons(self._earcons_cfg, granted.rate)
        for name in NAMES:
            earcons.get(name)
        with self._cond:
            self._stream.set_rate(granted.rate, earcons)
        self.rate = granted.rate
        self._out = np.zeros(granted.buffer_frames, dtype=np.int16)
        note = "" if granted.rate == OUTPUT_RATE else f", resampled from {OUTPUT_RATE} Hz"
        self._status.up(f"playback device {granted.device!r} open: {self.granted}{note}")
        return True

    def _wait_for_work(self) -> bool:
        """Under the lock: sleep until there is something to do; False when an idle look at
        the PCM found its card gone."""
        while not (self._stopping or self._drop or self._pcm is None or
                   self._stream.has_work(time.monotonic())):
            start_in = self._stream.start_in(time.monotonic())
            if start_in is not None:
                self._cond.wait(start_in)
            elif not self._cond.wait(IDLE_CHECK_S) and self._disconnected():
                return False
        return True

    def _disconnected(self) -> bool:
        try:
            return self._pcm is not None and \
                self._pcm.state() == alsaaudio.PCM_STATE_DISCONNECTED
        except alsaaudio.ALSAAudioError:
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
            pending, finished = self._stream.discard()
        if pending:
            log.warning("playback device offline: dropped %.1f s of reply audio",
                        pending / self.rate)
        self.playing = False
        if finished and self._on_drained:
            self._on_drained()

    def _reset_device(self) -> None:
        self._started_at = None
        self.playing = False

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
        """One pass: write all the audio ALSA has room for, then sleep until there is more."""
        room, queued = self._space()
        out = self._out[:room]
        with self._cond:
            n, starting = self._stream.pull(out, time.monotonic(), queued)
            seen = self._stream.mark
        if n:
            self._write(out[:n], starting)
            queued += n
        with self._cond:
            idle, pending = self._stream.idle, self._stream.pending
        if idle:
            self._finish()
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
                                    timeout=max(queued - half, self._stream.low_water) / self.rate)
            elif self._stream.mark == seen:
                left = queued - self._stream.low_water
                if left > 0:
                    self._cond.wait(left / self.rate)

    def _write(self, samples: np.ndarray, starting: bool) -> None:
        """Write what ALSA has room for (so this never blocks); report chunks handed over."""
        assert self._pcm is not None
        began = time.monotonic()
        written = self._pcm.write(samples)
        if written == EPIPE:
            self._alsa_underruns += 1
            log.debug("playback underrun (%d so far)", self._alsa_underruns)
            if not starting:
                self._ran_dry()
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
        with self._cond:
            ready = self._stream.handed()
        if starting and ready and self.on_prebuffered is not None:
            # The chunks that waited for the start: their wait is reported once, as the
            # reply's start-up wait, not as each chunk's handover latency.
            self.on_prebuffered(ready[0], t)
            ready = []
        if self.on_written is not None:
            for received_at in ready:
                self.on_written(received_at, t)

    def _ran_dry(self) -> None:
        """The device underran inside a reply: it needs more audio ahead than the stream kept."""
        with self._cond:
            raised = self._stream.in_reply and self._stream.underran()
            ms = 1000 * self._stream.low_water / self.rate
        if raised:
            log.info("the speaker ran dry inside a reply: keeping %.0f ms ahead of it from now "
                     "on", ms, extra={"PTTD_DEVICE": self.cfg.playback_device})

    def _finish(self) -> None:
        """Let ALSA play out what it holds (cut short by new work), then idle the stream."""
        pcm = self._pcm
        assert pcm is not None
        buffer = self._granted.buffer_frames
        period_s = self._granted.period_frames / self.rate
        while self.playing and pcm.state() == alsaaudio.PCM_STATE_RUNNING:
            avail = pcm.avail()
            if avail < 0 or avail >= buffer:
                break
            with self._cond:
                if self._cond.wait_for(self._interrupted,
                                       timeout=min((buffer - avail) / self.rate, period_s)):
                    return
        pcm.drop()
        self._reset_device()
        with self._cond:
            finished = self._stream.finish()
        if finished and self._on_drained:
            self._on_drained()

    def _interrupted(self) -> bool:
        return self._drop or self._stopping or self._stream.active
