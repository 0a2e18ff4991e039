"""Moves microphone audio from the capture ring to the Live session, in order.

The Sender owns every client message of a turn (activityStart, the pre-roll, the live periods,
activityEnd) and sends them one at a time on the loop thread, so they can never be reordered;
nothing is sent between turns, so an idle daemon has no per-period wake-ups at all. On release
the loop reads what the device holds at that instant (or `[audio] tail_ms` later, for
people who let go while still speaking), and activityEnd follows that audio at once.

The press and each period are sent by the loop callback that announces them while the task is
parked: waking the task would be one more pass of the loop each time, which costs more than a
frame's encoding and framing. Every send is synchronous (LiveClient's one send path); the task
only runs commands queued while it was busy, and waits for the release's period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from daemon.live.client import LiveClient
from daemon.stats import Stats
from hw.capture import Capture
from hw.ring import Ring

log = logging.getLogger("pttd.sender")

# The pre-roll and any backlog go out in frames of at most this much audio: fewer, larger
# frames than one per period, still well under the service's message size limit.
MAX_FRAME_MS = 200


@dataclass(frozen=True, slots=True)
class _Start:
    """Start a turn whose speech began at `edge`; `pressed_at` is when the app asked."""

    edge: float
    preroll_ms: int
    pressed_at: float


@dataclass(frozen=True, slots=True)
class _Stop:
    """End the turn after the audio up to `until` (the release plus the tail) has gone out."""

    released_at: float
    until: float
    server_vad: bool


class Sender:
    """Streams each turn's microphone audio to the Live session; see the module docstring.

    The app tells it when a turn starts and ends; it calls `on_failed(reason)` when a turn's
    audio could not be sent, so the turn machine can end the turn as failed:

        sender = Sender(live, capture, ring, stats, on_failed=report)
        asyncio.create_task(sender.run())
        sender.start_turn(edge=pressed_at, preroll_ms=300)   # activityStart, pre-roll, live
        sender.end_turn()                                     # the release's period, activityEnd
    """

    def __init__(self, live: LiveClient, capture: Capture, ring: Ring, stats: Stats, *,
                 on_failed: Callable[[str], None], tail_ms: int = 0) -> None:
        self._live = live
        self._tail_s = tail_ms / 1000
        self._capture = capture
        self._ring = ring
        self._stats = stats
        self._on_failed = on_failed
        self._rate = capture.rate
        self._buf = np.zeros(self._rate * MAX_FRAME_MS // 1000, dtype=np.int16)
        self._bytes = memoryview(self._buf).cast("B")
        self._cmds: deque[_Start | _Stop] = deque()
        self._wake = asyncio.Event()
        self._pos = 0
        self._start_at: float | None = None  # the pre-roll's start, until a read reaches it
        self._streaming = False
        self._period_at = 0.0
        self._period_head = 0
        self._arrived = asyncio.Event()
        self._parked = False              # the task waits for work: a callback may send
        self._ending: _Stop | None = None  # the task waits for this release's period
        self.samples_sent = 0
        # For `pttd status`: frames sent, and how often the task itself woke (once a turn, at
        # the release).
        self.frames = 0
        self.wakeups = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def streaming(self) -> bool:
        return self._streaming

    def start_turn(self, edge: float, preroll_ms: int) -> None:
        """Begin a turn whose speech started at monotonic `edge` (pre-roll reaches back from it)."""
        cmd = _Start(edge, preroll_ms, time.monotonic())
        if self._parked and not self._cmds:
            self._begin(cmd)
            return
        self._cmds.append(cmd)
        self._wake.set()

    def end_turn(self, *, server_vad: bool = False) -> None:
        """End the turn with the audio up to now plus the tail: capture reads it then."""
        now = time.monotonic()
        self._cmds.append(_Stop(now, now + self._tail_s, server_vad))
        self._wake.set()
        if not self._tail_s:
            self._capture.wake()
        elif self._loop is not None:
            self._loop.call_at(self._loop.time() + self._tail_s, self._capture.wake)

    def cancel(self) -> None:
        """Forget the current turn without sending anything more (the session is gone)."""
        self._cmds.clear()
        self._ending = None
        self._stop_streaming()

    def _period_ready(self, head: int, t_read: float) -> None:
        """Capture, on the loop: a period landed in the ring."""
        if not self._streaming:
            return  # capture stops announcing at arm(None); nothing goes out outside a turn
        self._period_head, self._period_at = head, t_read
        if self._ending is not None:
            self._finish(self._ending)
            self._arrived.set()
        elif self._parked and not self._cmds:
            self._push()
        else:
            self._wake.set()

    def _finish(self, stop: _Stop) -> None:
        """Send the audio in, and activityEnd too once the release's period is among it."""
        landed_at = self._capture.landed[1]
        if not self._push() or landed_at < stop.until:
            return
        self._ending = None
        self._send_end(stop, landed_at)

    def _stop_streaming(self) -> None:
        self._streaming = False
        self._capture.arm(None)
        # A period that landed while the last frame was on its way must not be timed against
        # the next turn's first frame (seconds later).
        self._period_at = 0.0
        self._arrived.set()

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                self._parked = True
                try:
                    await self._wake.wait()
                finally:
                    self._parked = False
                self._wake.clear()
                self.wakeups += 1
                while self._cmds:
                    cmd = self._cmds.popleft()
                    ok = self._begin(cmd) if isinstance(cmd, _Start) else await self._end(cmd)
                    if not ok:
                        self._cmds.clear()
                if self._streaming and not self._push():
                    self._cmds.clear()
        finally:
            self._stop_streaming()

    def _failed(self, what: str) -> bool:
        """The turn cannot be sent. Reported from the next pass of the loop: a press's send
        runs inside the turn machine's handling of that press, which must finish first."""
        self._stop_streaming()
        asyncio.get_running_loop().call_soon(
            self._on_failed, f"{what}: no Live session ready (session {self._live.state})")
        return False

    def _begin(self, cmd: _Start) -> bool:
        """The press: activityStart and the pre-roll; False when the turn failed."""
        self._arm(cmd)
        if self._live.cfg.turn_detection == "button" and not self._live.activity_start():
            return self._failed("activityStart")
        self._stats.press_to_activity_start.record(cmd.pressed_at, time.monotonic())
        return self._push()

    def _arm(self, cmd: _Start) -> None:
        # Arm first, so no period captured while activityStart is on its way is missed.
        self._capture.arm(self._period_ready)
        self._start_at = cmd.edge - cmd.preroll_ms / 1000
        self._locate()
        self.samples_sent = 0
        self._streaming = True

    async def _end(self, cmd: _Stop) -> bool:
        if not self._streaming:
            return True
        self._ending = cmd
        try:
            tail_at = await self._tail(cmd.until)
        finally:
            ending, self._ending = self._ending, None
        if ending is None:
            return True  # the period's callback sent the tail and activityEnd (or cancel())
        return self._push() and self._send_end(cmd, tail_at)

    def _send_end(self, cmd: _Stop, tail_at: float | None) -> bool:
        sent = self._live.audio_stream_end() if cmd.server_vad else self._live.activity_end()
        if not sent:
            return self._failed("activityEnd")
        self._stop_streaming()
        self._ended(cmd, tail_at)
        return True

    def _ended(self, cmd: _Stop, tail_at: float | None) -> None:
        now = time.monotonic()
        self._stats.release_to_activity_end.record(cmd.released_at, now)
        if tail_at is not None:
            self._stats.tail_to_activity_end.record(tail_at, now)

    async def _tail(self, until: float) -> float | None:
        """Wait until the audio up to `until` is in the ring (or the capture callback ended
        the turn); when it was read, or None if that did not happen within two capture frames
        of `until` (a stalled or lost microphone)."""
        deadline = until + 2 * self._capture.frame_s
        while self._ending is not None and self._capture.landed[1] < until:
            left = deadline - time.monotonic()
            if left <= 0 or not self._streaming or not self._capture.online:
                return None
            self._arrived.clear()
            try:
                async with asyncio.timeout(left):
                    await self._arrived.wait()
            except TimeoutError:
                return None
        return self._capture.landed[1]

    def _locate(self) -> bool:
        """Place the pre-roll's start in the ring, once a read has landed at or after it.

        It reaches back from the edge in time, not from the ring head, which is as old as the
        latest read: counting from the head would send what was said before the pre-roll. An
        idle read may be older than the pre-roll (idle reads are far apart); then the press's
        own read places it."""
        if self._start_at is None:
            return True
        head, landed_at = self._capture.landed
        if landed_at < self._start_at:
            return False
        back = round((landed_at - self._start_at) * self._rate)
        self._pos = max(head - back, self._ring.oldest)
        self._start_at = None
        return True

    def _push(self) -> bool:
        """Send what was captured since the last send; False when the turn failed because no
        session could take it."""
        ring, buf, live = self._ring, self._buf, self._live
        if not self._locate():
            return True     # no read has reached the pre-roll's start yet
        while True:
            pos, n = ring.read(self._pos, buf)
            if n == 0:
                return True
            if not live.send_audio(self._bytes[:2 * n]):
                return self._failed("audio")
            self._sent(pos, n)

    def _sent(self, pos: int, n: int) -> None:
        self._pos = pos
        self.samples_sent += n
        self.frames += 1
        if pos >= self._period_head and self._period_at:
            self._stats.capture_to_send.record(self._period_at, time.monotonic())
            self._period_at = 0.0
