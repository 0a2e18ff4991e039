"""The Sender's logic: which audio of the capture ring goes out, from where, and when the turn
ends. A real Ring; LiveClient and Capture are small recording stand-ins (their public send
methods; the few attributes the Sender reads), so this is a pure unit test of the logic."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

import config
from config.rates import INPUT_RATE
from daemon.sender import Sender
from daemon.stats import Stats
from hw.ring import Ring

FRAME_S = 0.02
PERIOD = int(INPUT_RATE * FRAME_S)
LIVE = config.parse("").live


class Live:
    """Records what the Sender sends; `ok` False makes every send fail (no session)."""

    def __init__(self, turn_detection: str = "button") -> None:
        self.cfg = dataclasses.replace(LIVE, turn_detection=turn_detection)
        self.state = "ready"
        self.ok = True
        self.sent: list[tuple[str, float]] = []
        self.audio: list[np.ndarray] = []

    def _send(self, what: str) -> bool:
        self.sent.append((what, time.monotonic()))
        return self.ok

    def activity_start(self) -> bool:
        return self._send("activityStart")

    def send_audio(self, pcm: bytes | memoryview) -> bool:
        self.audio.append(np.frombuffer(bytes(pcm), np.int16))
        return self._send("audio")

    def activity_end(self) -> bool:
        return self._send("activityEnd")

    def audio_stream_end(self) -> bool:
        return self._send("audioStreamEnd")

    @property
    def kinds(self) -> list[str]:
        return [what for what, _ in self.sent]

    def samples(self) -> np.ndarray:
        return np.concatenate(self.audio) if self.audio else np.zeros(0, np.int16)


class Capture:
    """What capture does for the Sender: writes periods into the ring, says up to when they
    landed, and calls the armed callback from a callback of its own on the loop, as the real
    one does from the device's reader."""

    rate = INPUT_RATE
    frame_s = FRAME_S

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.online = True
        self.landed: tuple[int, float] = (0, 0.0)
        self.notify: Callable[[int, float], None] | None = None
        self.wakes = 0

    def arm(self, notify: Callable[[int, float], None] | None) -> None:
        self.notify = notify

    def wake(self) -> None:
        self.wakes += 1

    def period(self, n: int = PERIOD, landed_at: float | None = None) -> None:
        """`n` more samples, each its own position (mod 2**15), so what is sent can be
        checked against where it came from."""
        head = self.ring.head
        self.ring.write((np.arange(head, head + n) % 32768).astype(np.int16))
        self.landed = (self.ring.head, time.monotonic() if landed_at is None else landed_at)
        asyncio.get_running_loop().call_soon(self._announce, self.landed)

    def _announce(self, landed: tuple[int, float]) -> None:
        if self.notify is not None:
            self.notify(*landed)


def positions(start: int, stop: int) -> np.ndarray:
    return (np.arange(start, stop) % 32768).astype(np.int16)


class Rig:
    def __init__(self, *, capacity: int = INPUT_RATE, tail_ms: int = 0,
                 turn_detection: str = "button") -> None:
        self.ring = Ring(capacity)
        self.capture = Capture(self.ring)
        self.live = Live(turn_detection)
        self.failures: list[str] = []
        self.sender = Sender(self.live, self.capture, self.ring, Stats(),  # type: ignore[arg-type]
                             on_failed=self.failures.append, tail_ms=tail_ms)


def run(test: Callable[[Rig], Awaitable[None]], **kw: Any) -> Rig:
    """Run `test` with the Sender's task parked and waiting, as in the daemon."""
    rig = Rig(**kw)

    async def main() -> None:
        task = asyncio.create_task(rig.sender.run())
        await settle()
        try:
            await test(rig)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    return rig


async def settle() -> None:
    """Let queued callbacks and the Sender's task run."""
    for _ in range(5):
        await asyncio.sleep(0)


async def until(done: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not done():
            await asyncio.sleep(0.002)


def test_the_pre_roll_reaches_back_from_the_press_edge_in_time() -> None:
    """The last period landed 100 ms after the press: a 300 ms pre-roll starts 400 ms before
    that period's end, not 300 ms before the ring head."""
    async def test(rig: Rig) -> None:
        landed_at = time.monotonic()
        rig.capture.period(INPUT_RATE // 2, landed_at)
        rig.sender.start_turn(landed_at - 0.1, 300)
        assert rig.live.kinds[0] == "activityStart"
        head = rig.ring.head
        np.testing.assert_array_equal(rig.live.samples(),
                                      positions(head - int(0.4 * INPUT_RATE), head))
        assert rig.sender.samples_sent == int(0.4 * INPUT_RATE)
    run(test)


def test_a_read_older_than_the_pre_roll_starts_it_past_the_ring_head() -> None:
    """Idle reads are half a second apart: the last one landed 450 ms before the press, so a
    300 ms pre-roll starts 150 ms after that read's end, once the press's own read brings it;
    nothing said before the pre-roll goes out."""
    async def test(rig: Rig) -> None:
        landed_at = time.monotonic()
        rig.capture.period(INPUT_RATE // 2, landed_at)
        start = rig.ring.head + int(0.15 * INPUT_RATE)
        rig.sender.start_turn(landed_at + 0.45, 300)
        assert rig.live.kinds == ["activityStart"], "nothing of the pre-roll is in the ring yet"
        rig.capture.period(INPUT_RATE // 2, landed_at + 0.5)   # the read the press asked for
        await settle()
        np.testing.assert_array_equal(rig.live.samples(), positions(start, rig.ring.head))
        assert rig.sender.samples_sent == rig.ring.head - start
    run(test)


def test_the_pre_roll_never_reaches_before_the_ring_s_oldest_sample() -> None:
    async def test(rig: Rig) -> None:
        rig.capture.period(3 * INPUT_RATE // 4)        # more than the ring holds
        rig.sender.start_turn(rig.capture.landed[1] - 1.0, 300)
        assert rig.ring.oldest == rig.ring.head - rig.ring.capacity > 0
        np.testing.assert_array_equal(rig.live.samples(),
                                      positions(rig.ring.oldest, rig.ring.head))
        assert rig.ring.overruns == 0, "a read from before the oldest sample counts an overrun"
    run(test, capacity=INPUT_RATE // 2)


def test_periods_are_sent_from_the_capture_callback_while_the_task_is_parked() -> None:
    async def test(rig: Rig) -> None:
        rig.capture.period()
        rig.sender.start_turn(rig.capture.landed[1], 0)
        wakeups = rig.sender.wakeups
        start = rig.ring.head
        for i in range(3):
            rig.capture.period()
            assert len(rig.live.audio) == i, "sent on the loop, not on the capture thread"
            await asyncio.sleep(0)                      # the callback's one loop pass
            assert len(rig.live.audio) == i + 1
        assert rig.sender.wakeups == wakeups, "the task was woken for a period"
        np.testing.assert_array_equal(rig.live.samples(), positions(start, rig.ring.head))
        assert rig.sender.frames == 3
    run(test)


def test_the_release_sends_all_up_to_it_plus_the_tail_then_activity_end_once() -> None:
    async def test(rig: Rig) -> None:
        rig.capture.period()
        rig.sender.start_turn(rig.capture.landed[1], 0)
        announce = rig.capture.notify
        assert announce is not None
        start = rig.ring.head
        before = time.monotonic()
        rig.sender.end_turn()
        released = time.monotonic()
        await settle()
        assert rig.capture.wakes == 0, "the capture is woken when the tail is in, not before"
        rig.capture.period(landed_at=before + 0.05)     # inside the tail: not the end yet
        await settle()
        assert "activityEnd" not in rig.live.kinds
        rig.capture.period(landed_at=released + 0.1)    # the release plus tail_ms has landed
        await asyncio.sleep(0)                          # the period's callback ends the turn
        assert rig.live.kinds[-2:] == ["audio", "activityEnd"]
        await until(lambda: rig.capture.wakes == 1)     # the tail's timer, still pending
        assert rig.live.kinds[-1] == "activityEnd" and rig.live.kinds.count("activityEnd") == 1
        np.testing.assert_array_equal(rig.live.samples(), positions(start, rig.ring.head))
        assert rig.capture.notify is None, "the capture is disarmed at the end"
        rig.capture.period()
        announce(*rig.capture.landed)                   # announced just before the end
        await settle()
        assert rig.live.kinds.count("activityEnd") == 1 and rig.live.kinds[-1] == "activityEnd"
        assert not rig.sender.streaming and rig.failures == []
    run(test, tail_ms=100)


def test_server_vad_sends_audio_stream_end_instead_of_activity_markers() -> None:
    async def test(rig: Rig) -> None:
        rig.capture.period()
        rig.sender.start_turn(rig.capture.landed[1], 0)
        assert "activityStart" not in rig.live.kinds
        rig.sender.end_turn(server_vad=True)
        assert rig.capture.wakes == 1                   # no tail: read the device now
        rig.capture.period()
        await until(lambda: not rig.sender.streaming)
        assert rig.live.kinds[-1] == "audioStreamEnd"
        assert "activityEnd" not in rig.live.kinds and rig.live.kinds.count("audioStreamEnd") == 1
    run(test, turn_detection="server")


def test_a_failed_send_stops_the_turn_and_reports_once_on_the_next_loop_pass() -> None:
    async def test(rig: Rig) -> None:
        rig.capture.period()
        rig.sender.start_turn(rig.capture.landed[1], 0)
        rig.live.ok = False
        rig.capture.period()
        await asyncio.sleep(0)                          # the period's callback: the send fails
        assert not rig.sender.streaming and rig.failures == []
        await asyncio.sleep(0)
        assert rig.failures == ["audio: no Live session ready (session ready)"]
        sent = len(rig.live.sent)
        rig.capture.period()
        rig.sender.end_turn()
        rig.capture.period()
        await settle()
        assert len(rig.live.sent) == sent and len(rig.failures) == 1
    run(test)


def test_a_failed_activity_start_sends_no_audio() -> None:
    async def test(rig: Rig) -> None:
        rig.capture.period()
        rig.live.ok = False
        rig.sender.start_turn(rig.capture.landed[1], 300)
        assert rig.live.kinds == ["activityStart"] and not rig.sender.streaming
        await settle()
        assert rig.failures == ["activityStart: no Live session ready (session ready)"]
    run(test)


def test_cancel_sends_nothing_more() -> None:
    async def test(rig: Rig) -> None:
        rig.capture.period()
        rig.sender.start_turn(rig.capture.landed[1], 0)
        rig.capture.period()                            # announced, not yet sent
        rig.sender.cancel()
        sent = list(rig.live.kinds)
        await settle()
        rig.capture.period()
        rig.sender.end_turn()
        rig.capture.period()
        await asyncio.sleep(3 * FRAME_S)
        assert rig.live.kinds == sent and rig.capture.notify is None
        assert not rig.sender.streaming and rig.failures == []
    run(test)


def test_a_stalled_microphone_ends_the_turn_after_two_frames() -> None:
    """No period lands after the release: activityEnd follows what was sent, two capture
    frames after the release, so the turn is not held open by a dead device."""
    async def test(rig: Rig) -> None:
        rig.capture.period()
        rig.sender.start_turn(rig.capture.landed[1], 0)
        released = time.monotonic()
        rig.sender.end_turn()
        await until(lambda: "activityEnd" in rig.live.kinds)
        ended_at = dict(rig.live.sent)["activityEnd"]
        assert ended_at - released >= 2 * FRAME_S
        assert rig.live.kinds.count("activityEnd") == 1 and not rig.sender.streaming
        assert rig.failures == []
    run(test)
