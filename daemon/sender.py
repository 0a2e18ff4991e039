"""Moves microphone audio from the capture ring to the Live session, in order.

One task owns every client message of a turn (activityStart, the pre-roll, the live periods,
activityEnd), so they can never be reordered, and it wakes once per captured period only while
a turn is streaming: an idle daemon has no per-period wake-ups at all. On release it waits for
the period that holds the release instant before activityEnd, so the last syllable is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from daemon.live.client import LiveClient, SessionUnavailable
from daemon.stats import Stats
from hw.alsa import Capture
from hw.ring import Ring

log = logging.getLogger("pttd.sender")

# The pre-roll and any backlog go out in frames of at most this much audio: fewer, larger
# frames than one per period, still well under the service's message size limit.
MAX_FRAME_MS = 200


@dataclass(frozen=True, slots=True)
class _Start:
    edge: float
    preroll_ms: int
    pressed_at: float


@dataclass(frozen=True, slots=True)
class _Stop:
    released_at: float
    server_vad: bool


class Sender:
    """Streams turns; `on_failed(reason)` is called when a turn's audio could not be sent."""

    def __init__(self, live: LiveClient, capture: Capture, ring: Ring, stats: Stats, *,
                 on_failed: Callable[[str], None]) -> None:
        self._live = live
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
        self._streaming = False
        self._period_at = 0.0
        self._period_head = 0
        self._arrived = asyncio.Event()
        self.samples_sent = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def streaming(self) -> bool:
        return self._streaming

    def start_turn(self, edge: float, preroll_ms: int) -> None:
        """Begin a turn whose speech started at monotonic `edge` (pre-roll reaches back from it)."""
        self._cmds.append(_Start(edge, preroll_ms, time.monotonic()))
        self._wake.set()

    def end_turn(self, *, server_vad: bool = False) -> None:
        self._cmds.append(_Stop(time.monotonic(), server_vad))
        self._wake.set()

    def cancel(self) -> None:
        """Forget the current turn without sending anything more (the session is gone)."""
        self._cmds.clear()
        self._stop_streaming()

    def _on_period(self, head: int, t_read: float) -> None:
        """Capture thread: a period landed in the ring."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._period_ready, head, t_read)

    def _period_ready(self, head: int, t_read: float) -> None:
        if not self._streaming:
            return  # queued by the capture thread just before the turn ended
        self._period_head, self._period_at = head, t_read
        self._arrived.set()
        self._wake.set()

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
                await self._wake.wait()
                self._wake.clear()
                while self._cmds:
                    cmd = self._cmds.popleft()
                    ok = await (self._begin(cmd) if isinstance(cmd, _Start) else self._end(cmd))
                    if not ok:
                        self._cmds.clear()
                if self._streaming and not await self._drain():
                    self._cmds.clear()
        finally:
            self._stop_streaming()

    async def _guard(self, what: str, send: Awaitable[None]) -> bool:
        try:
            await send
        except SessionUnavailable as exc:
            self._stop_streaming()
            self._on_failed(f"{what}: {exc}")
            return False
        return True

    async def _begin(self, cmd: _Start) -> bool:
        # Arm first, so no period captured while activityStart is on its way is missed.
        self._capture.arm(self._on_period)
        # The pre-roll reaches back from the edge in time, not from the ring head, which is as
        # old as the latest period: counting from the head would send up to a period more of
        # what was said before the press.
        head, landed_at = self._capture.landed
        reach = max(0.0, landed_at - cmd.edge + cmd.preroll_ms / 1000)
        self._pos = max(head - int(reach * self._rate), self._ring.oldest)
        self.samples_sent = 0
        self._streaming = True
        if (self._live.cfg.turn_detection == "button"
                and not await self._guard("activityStart", self._live.activity_start())):
            return False
        self._stats.press_to_activity_start.record(cmd.pressed_at, time.monotonic())
        return await self._drain()

    async def _end(self, cmd: _Stop) -> bool:
        if not self._streaming:
            return True
        tail_at = await self._tail(cmd.released_at)
        ok = await self._drain()
        self._stop_streaming()
        if not ok:
            return False
        end = self._live.audio_stream_end() if cmd.server_vad else self._live.activity_end()
        if not await self._guard("activityEnd", end):
            return False
        now = time.monotonic()
        self._stats.release_to_activity_end.record(cmd.released_at, now)
        if tail_at is not None:
            self._stats.tail_to_activity_end.record(tail_at, now)
        return True

    async def _tail(self, released_at: float) -> float | None:
        """Wait until the capture period holding `released_at` is in the ring; when it was read,
        or None if it did not come within two periods (a stalled or lost microphone)."""
        deadline = time.monotonic() + 2 * self._capture.period_s
        while self._capture.landed[1] < released_at:
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

    async def _drain(self) -> bool:
        """Send everything captured since the last send; False when the session is gone."""
        ring, buf, live = self._ring, self._buf, self._live
        while True:
            pos, n = ring.read(self._pos, buf)
            if n == 0:
                return True
            if not await self._guard("audio", live.send_audio(self._bytes[:2 * n])):
                return False
            self._pos = pos
            self.samples_sent += n
            if pos >= self._period_head and self._period_at:
                self._stats.capture_to_send.record(self._period_at, time.monotonic())
                self._period_at = 0.0
