"""Capture and playback in real time: PulseAudio null sink reached through ALSA's pulse plugin."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fixtures_audio import LoopThread, counter, counter_start

from config import AudioConfig, EarconsConfig
from daemon.devkit.simsink import SimSink
from hw import reply
from hw.capture import IDLE_READ_S, Capture
from hw.earcons import tone
from hw.playback import Playback
from hw.ring import Ring

QUIET = EarconsConfig(enabled=False)
PERIOD_S = 0.020
# The shortest period and the default: playback must not depend on which one a device has.
PERIODS_MS = (20, AudioConfig().period_ms)


def _wait(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _switches(thread: threading.Thread) -> int:
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return sum(int(line.split()[1]) for line in status.splitlines()
               if "ctxt_switches:" in line)


def _reply_with_gap(pb: Playback, part1: np.ndarray, part2: np.ndarray,
                    noticed: Callable[[], bool], why: str) -> None:
    """One reply in two parts with a pause between them long enough for `noticed`."""
    for i in range(0, len(part1), 960):
        pb.feed(part1[i:i + 960].tobytes())
    assert _wait(noticed), why
    for i in range(0, len(part2), 960):
        pb.feed(part2[i:i + 960].tobytes())
    pb.end_reply()


def test_press_sends_preroll_plus_held_audio_contiguously(sim_env: SimSink,
                                                         on_loop: LoopThread) -> None:
    preroll = 16000 * 300 // 1000
    held = 16000 // 2
    ring = Ring(16000 * 3)
    cap = Capture(AudioConfig(capture_device=sim_env.capture_device), ring)
    got = np.zeros(preroll + held, dtype=np.int16)
    state = {"pos": 0, "n": 0, "calls": 0, "t": [0.0, 0.0]}
    done = threading.Event()

    def notify(head: int, t_read: float) -> None:
        state["calls"] += 1
        state["pos"], k = ring.read(state["pos"], got[state["n"]:])
        state["n"] += k
        state["t"][1] = t_read
        if state["n"] == len(got):
            done.set()

    cap.start()
    try:
        assert _wait(lambda: ring.head >= 16000), "capture did not run for a second"
        press_head = ring.head
        state["pos"] = max(ring.head - preroll, ring.oldest)
        state["t"][0] = time.monotonic()
        on_loop.call(cap.arm, notify)
        assert done.wait(5)
        on_loop.call(cap.arm, None)
        calls = state["calls"]
        head = ring.head
        assert _wait(lambda: ring.head >= head + 3 * 320)
        assert state["calls"] == calls, "a disarmed capture must not call back"
    finally:
        cap.stop()
    assert state["pos"] - len(got) == press_head - preroll
    assert counter_start(got) == (press_head - preroll) & 0xFFFF
    # Real time: the held part cannot have arrived faster than it was spoken.
    assert state["t"][1] - state["t"][0] >= 0.8 * (len(got) - (ring.head - press_head)) / 16000
    assert ring.overruns == 0


def _played_since(sim: SimSink, before: int) -> np.ndarray:
    return np.frombuffer(sim.written()[before:], dtype=np.int16)


@pytest.mark.parametrize("period_ms", PERIODS_MS)
def test_gap_inside_a_reply_is_filled_with_silence_and_counted(sim_env: SimSink,
                                                               period_ms: int) -> None:
    before = len(sim_env.written())
    drained = threading.Event()
    pb = Playback(AudioConfig(playback_device=sim_env.playback_device, period_ms=period_ms), QUIET,
                  on_drained=drained.set)
    pb.start()
    part1, part2 = counter(0, 24000 // 2), counter(20000, 24000 // 2)
    try:
        _reply_with_gap(pb, part1, part2, lambda: pb.underruns > 0, "the gap was not noticed")
        assert drained.wait(10)
    finally:
        pb.stop()
    out = _played_since(sim_env, before)
    assert len(out) > len(part1) + len(part2)
    np.testing.assert_array_equal(out[:len(part1)], part1)
    np.testing.assert_array_equal(out[-len(part2):], part2)
    assert not out[len(part1):-len(part2)].any()
    assert pb.underruns == 1, "one gap, and no ALSA underrun around it"


def test_a_speaker_that_runs_dry_inside_a_reply_gets_more_audio_kept_ahead(
        sim_env: SimSink, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # A 1 ms low water is less than the null sink takes ahead of playing: a gap underruns it.
    monkeypatch.setattr(reply, "LOW_WATER_S", 0.001)
    drained = threading.Event()
    pb = Playback(AudioConfig(playback_device=sim_env.playback_device), QUIET,
                  on_drained=drained.set)
    pb.start()
    part1, part2 = counter(0, 24000 // 2), counter(20000, 24000 // 2)
    try:
        with caplog.at_level(logging.INFO, logger="pttd.audio"):
            _reply_with_gap(pb, part1, part2, lambda: pb.underruns > 1,
                            "the device never ran dry")
            assert drained.wait(10)
    finally:
        pb.stop()
    raised = [r.getMessage() for r in caplog.records if "ran dry inside a reply" in r.getMessage()]
    assert raised and raised[0].endswith("keeping 9 ms ahead of it from now on"), raised


@pytest.mark.parametrize("period_ms", PERIODS_MS)
def test_stop_now_silences_within_one_period(sim_env: SimSink, period_ms: int) -> None:
    rate = 24000
    t = np.arange(rate * 3) / rate
    reply = (12000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    pb = Playback(AudioConfig(playback_device=sim_env.playback_device, period_ms=period_ms), QUIET)
    handed: list[float] = []
    pb.on_written = lambda received, at: handed.append(at)
    pb.start()
    try:
        for i in range(0, len(reply), 960):
            pb.feed(reply[i:i + 960].tobytes(), received_at=0.0)
        heard_before = len(sim_env.heard()) // 2
        assert _wait(lambda: len(handed) > 20)
        assert _wait(lambda: np.abs(np.frombuffer(sim_env.heard(), np.int16)[heard_before:])
                     .max(initial=0) > 6000), "the reply was never heard"
        stop_at = len(sim_env.heard()) // 2
        pb.stop_now()
        assert _wait(lambda: len(sim_env.heard()) // 2 > stop_at + rate // 2)
    finally:
        pb.stop()
    heard = np.frombuffer(sim_env.heard(), dtype=np.int16)[heard_before:]
    loud = np.flatnonzero(np.abs(heard) > 1000)
    tail_s = (loud[-1] + heard_before - stop_at) / rate
    print(f"sound stopped {tail_s * 1000:.1f} ms after stop_now (monitor timeline)")
    assert tail_s <= PERIOD_S
    assert len(loud) < len(reply) // 2


def test_idle_playback_thread_sleeps(sim_env: SimSink) -> None:
    drained = threading.Event()
    pb = Playback(AudioConfig(playback_device=sim_env.playback_device), QUIET,
                  on_drained=drained.set)
    pb.start()
    try:
        pb.feed(counter(0, 2400).tobytes())
        pb.end_reply()
        assert drained.wait(5)
        assert pb._thread is not None
        time.sleep(0.1)  # on_drained runs on the thread just before it goes back to sleep
        first = _switches(pb._thread)
        time.sleep(0.5)
        assert _switches(pb._thread) == first, "an idle playback thread must not wake up"
    finally:
        pb.stop()


def test_idle_capture_reads_twice_a_second_and_keeps_the_preroll(sim_env: SimSink,
                                                                 on_loop: LoopThread) -> None:
    ring = Ring(16000 * 3)
    cap = Capture(AudioConfig(capture_device=sim_env.capture_device), ring)
    cap.start()
    try:
        assert _wait(lambda: ring.head > 0)
        time.sleep(0.6)
        head = ring.head
        # Each read stamps `landed`; count the reads by their stamps, as the context switches
        # around each one depend on the pulse plugin and the machine's load, not on pttd.
        reads: set[float] = set()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            reads.add(cap.landed[1])
            time.sleep(0.002)
        assert 2 / IDLE_READ_S - 1 <= len(reads) <= 2 / IDLE_READ_S + 1, \
            f"an idle capture thread read {len(reads)} times in 2 s"
        # Nothing was lost between the reads: the device held it.
        arrived = threading.Event()
        on_loop.call(cap.arm, lambda *_: arrived.set())
        assert arrived.wait(2)
        assert ring.head - head >= 16000 * 2 - 16000 * 64 // 1000
        assert cap.overruns == 0
    finally:
        cap.stop()


def test_devices_come_back_after_the_server_restarts(fresh_sim: SimSink) -> None:
    events: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def status(kind: str) -> Callable[[bool, str], None]:
        def record(online: bool, message: str) -> None:
            with lock:
                events.append((kind, online))
        return record

    ring = Ring(16000)
    drained = threading.Event()
    cap = Capture(AudioConfig(capture_device=fresh_sim.plain_capture), ring,
                  on_status=status("capture"))
    pb = Playback(AudioConfig(playback_device=fresh_sim.playback_device), QUIET,
                  on_status=status("playback"), on_drained=drained.set)
    cap.start()
    pb.start()
    try:
        assert _wait(lambda: cap.online and pb.online and ring.head > 1600)
        fresh_sim.stop_server()
        assert _wait(lambda: ("capture", False) in events)
        pb.feed(counter(0, 4800).tobytes())
        pb.end_reply()
        assert drained.wait(10), "a reply for a lost device must still end"
        assert ("playback", False) in events
        fresh_sim.start_server()
        assert _wait(lambda: cap.online and pb.online, timeout=15)
        head = ring.head
        assert _wait(lambda: ring.head > head + 1600), "capture did not resume"
        drained.clear()
        before = len(fresh_sim.written())
        reply = counter(100, 4800)
        pb.feed(reply.tobytes())
        pb.end_reply()
        assert drained.wait(10)
        np.testing.assert_array_equal(_played_since(fresh_sim, before), reply)
    finally:
        cap.stop()
        pb.stop()
    assert [e for e in events if e[0] == "capture"] == [
        ("capture", True), ("capture", False), ("capture", True)]
    assert [e for e in events if e[0] == "playback"] == [
        ("playback", True), ("playback", False), ("playback", True)]


def test_alsa_underrun_is_counted_and_loses_nothing(sim_env: SimSink) -> None:
    before = len(sim_env.written())
    drained = threading.Event()
    pb = Playback(AudioConfig(playback_device=sim_env.playback_device, period_ms=20), QUIET,
                  on_drained=drained.set)
    stalled = threading.Event()

    def stall_once(received: float, handed: float) -> None:
        if received >= 10 and not stalled.is_set():
            stalled.set()
            time.sleep(0.3)  # a slow callback on the playback thread: ALSA's buffer runs dry

    pb.on_written = stall_once
    reply = counter(0, 24000 // 2)
    pb.start()
    try:
        for i in range(0, len(reply), 480):
            pb.feed(reply[i:i + 480].tobytes(), received_at=float(i // 480))
        pb.end_reply()
        assert drained.wait(10)
    finally:
        pb.stop()
    assert stalled.is_set() and pb.underruns == 1
    np.testing.assert_array_equal(_played_since(sim_env, before), reply)




@pytest.mark.parametrize("period_ms", PERIODS_MS)
def test_after_barge_in_the_next_reply_and_earcon_play(sim_env: SimSink, period_ms: int) -> None:
    """After drop() a pulse PCM can report avail() == 0 until written: nothing may wait on it."""
    drained = threading.Event()
    pb = Playback(AudioConfig(playback_device=sim_env.playback_device, period_ms=period_ms),
                  EarconsConfig(),
                  on_drained=drained.set)
    beep = tone("listen_start", 24000, EarconsConfig().volume).tobytes()
    reply = counter(1000, 2400).tobytes()

    def barge_in(after_s: float) -> None:
        pb.feed(counter(0, 24000).tobytes())
        assert _wait(lambda: pb.playing)
        time.sleep(after_s)  # how much of ALSA's buffer is full when the drop comes
        pb.stop_now()

    pb.start()
    try:
        for after_s in (0.1, 0.02, 0.05, 0.08):
            drained.clear()
            barge_in(after_s)
            pb.feed(reply)
            pb.end_reply()
            assert drained.wait(2), f"the reply after a barge-in at {after_s} s never drained"
            assert sim_env.written().endswith(reply)
        barge_in(0.1)
        pb.play_earcon("listen_start")
        assert _wait(lambda: sim_env.written().endswith(beep), timeout=5), "no earcon after drop"
    finally:
        pb.stop()


# ------------------------------------------------------------ capture read by the loop


class _Calls:
    """Every notify: (thread ident, ring head, landed_at)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, float]] = []

    def __call__(self, head: int, landed_at: float) -> None:
        self.calls.append((threading.get_ident(), head, landed_at))

    def __len__(self) -> int:
        return len(self.calls)


def test_armed_reads_run_on_the_loop_and_the_thread_sleeps(sim_env: SimSink,
                                                           on_loop: LoopThread) -> None:
    ring = Ring(16000 * 5)
    cap = Capture(AudioConfig(capture_device=sim_env.capture_device), ring)
    calls = _Calls()
    cap.start()
    try:
        assert _wait(lambda: ring.head > 0)
        assert cap._thread is not None
        on_loop.call(cap.arm, calls)
        time.sleep(0.6)  # the thread's idle wait ends once, and it finds the loop holds it
        first, n, head = _switches(cap._thread), len(calls), ring.head
        time.sleep(1.5)
        woke = _switches(cap._thread) - first
        periods = len(calls) - n
        assert ring.head - head >= 16000, "the loop did not keep reading"
        on_loop.call(cap.arm, None)
    finally:
        cap.stop()
    assert {ident for ident, _, _ in calls.calls} == {on_loop.thread.ident}
    assert periods >= 1.5 / 0.064 / 2, f"only {periods} reads in 1.5 s while armed"
    assert woke <= 2, f"the capture thread woke {woke} times in 1.5 s while the loop read"


def test_no_sample_is_lost_or_doubled_across_handovers(sim_env: SimSink,
                                                       on_loop: LoopThread) -> None:
    """Arm, disarm and wake at random moments, some right after the disarm's kick has the
    thread reading: the ring holds the microphone's counter whole, whoever read each part."""
    ring = Ring(16000 * 10)
    cap = Capture(AudioConfig(capture_device=sim_env.capture_device), ring)
    calls = _Calls()
    rng = random.Random(23)
    cap.start()
    try:
        assert _wait(lambda: ring.head > 0)
        for _ in range(40):
            on_loop.call(cap.arm, calls)
            time.sleep(rng.choice((0, 0.003, 0.02, 0.07)))
            if rng.random() < 0.3:
                on_loop.call(cap.wake)
            on_loop.call(cap.arm, None)
            time.sleep(rng.choice((0, 0, 0.002, 0.03, 0.1)))
        n, head = len(calls), ring.head
        assert _wait(lambda: ring.head >= head + 16000 // 2), "idle reads did not resume"
        assert len(calls) == n, "a disarmed capture must not call back"
    finally:
        cap.stop()
    got = np.zeros(ring.head, dtype=np.int16)
    assert ring.read(0, got) == (ring.head, ring.head)
    np.testing.assert_array_equal(got, counter(0, len(got)))
    heads = [head for _, head, _ in calls.calls]
    landed = [at for _, _, at in calls.calls]
    assert heads == sorted(heads) and landed == sorted(landed)
    assert cap.overruns == 0 and ring.overruns == 0


def test_wake_on_the_loop_reads_at_once_and_announces_on_the_next_pass(
        sim_env: SimSink, on_loop: LoopThread) -> None:
    ring = Ring(16000 * 5)
    cap = Capture(AudioConfig(capture_device=sim_env.capture_device), ring)
    calls = _Calls()
    inside: list[bool] = []
    waking = [False]

    def notify(head: int, landed_at: float) -> None:
        inside.append(waking[0])
        calls(head, landed_at)

    def release() -> tuple[float, tuple[int, float], int]:
        waking[0] = True
        asked_at = time.monotonic()
        cap.wake()
        waking[0] = False
        return asked_at, cap.landed, len(calls)

    cap.start()
    try:
        assert _wait(lambda: ring.head > 0)
        on_loop.call(cap.arm, notify)
        assert _wait(lambda: len(calls) >= 3)
        asked_at, landed, before = on_loop.call(release)
        assert _wait(lambda: len(calls) > before)
        on_loop.call(cap.arm, None)
    finally:
        cap.stop()
    assert landed[1] >= asked_at, "wake() did not read the device itself"
    assert calls.calls[before][1:] == landed, "the next call is the wake's own read"
    assert not any(inside), "notify was called from inside arm() or wake()"


def test_a_device_lost_while_armed_is_reopened_and_the_turn_goes_on(
        fresh_sim: SimSink, on_loop: LoopThread, caplog: pytest.LogCaptureFixture) -> None:
    events: list[bool] = []
    ring = Ring(16000 * 5)
    cap = Capture(AudioConfig(capture_device=fresh_sim.plain_capture), ring,
                  on_status=lambda online, _: events.append(online))
    calls = _Calls()
    cap.start()
    try:
        assert _wait(lambda: cap.online and ring.head > 0)
        on_loop.call(cap.arm, calls)
        assert _wait(lambda: len(calls) >= 3)
        with caplog.at_level(logging.INFO, logger="pttd.audio"):
            fresh_sim.stop_server()
            assert _wait(lambda: False in events), "the loss was not reported"
            fresh_sim.start_server()
            assert _wait(lambda: cap.online, timeout=15)
            n, head = len(calls), ring.head
            assert _wait(lambda: len(calls) >= n + 5), "the armed turn did not resume"
        assert ring.head > head
        on_loop.call(cap.arm, None)
    finally:
        cap.stop()
    assert events == [True, False, True]
    assert any("capture device" in r.getMessage() and "lost" in r.getMessage()
               for r in caplog.records)
    assert {ident for ident, _, _ in calls.calls} == {on_loop.thread.ident}


def test_a_stalled_device_is_still_read_by_the_loop_once_an_idle_interval(
        fresh_sim: SimSink, on_loop: LoopThread) -> None:
    """A suspended sink's monitor delivers nothing and never makes its descriptor ready."""
    ring = Ring(16000 * 5)
    cap = Capture(AudioConfig(capture_device=fresh_sim.plain_capture), ring)
    calls = _Calls()

    def suspend(on: bool) -> None:
        subprocess.run(["pactl", "suspend-sink", "nullsink", str(int(on))], env=os.environ,
                       check=True, timeout=5)

    cap.start()
    try:
        assert _wait(lambda: ring.head > 0)
        on_loop.call(cap.arm, calls)
        assert _wait(lambda: len(calls) >= 3)
        suspend(True)
        time.sleep(0.5)
        head, reads = ring.head, set()
        for _ in range(40):
            reads.add(cap.landed[1])
            time.sleep(0.05)
        assert ring.head == head, "the suspended sink still delivered audio"
        suspend(False)
        n = len(calls)
        assert _wait(lambda: len(calls) > n + 3), "reads on readiness did not resume"
        on_loop.call(cap.arm, None)
    finally:
        cap.stop()
    assert len(reads) >= 3, f"{len(reads)} reads in 2 s of a stalled device"


@pytest.mark.parametrize("caller", ["another thread", "the loop"])
def test_stop_while_armed_ends_the_thread_and_closes_the_device(
        sim_env: SimSink, on_loop: LoopThread, caplog: pytest.LogCaptureFixture,
        caller: str) -> None:
    ring = Ring(16000 * 5)
    cap = Capture(AudioConfig(capture_device=sim_env.capture_device), ring)
    calls = _Calls()
    fds = len(os.listdir("/proc/self/fd"))
    cap.start()
    assert _wait(lambda: ring.head > 0)
    thread = cap._thread
    assert thread is not None
    on_loop.call(cap.arm, calls)
    assert _wait(lambda: len(calls) >= 2)
    if caller == "the loop":
        on_loop.call(cap.stop)
    else:
        cap.stop()
    assert not thread.is_alive()
    assert "did not stop" not in caplog.text
    on_loop.call(lambda: None)  # the loop has let go of the device, and closed it
    n = len(calls)
    time.sleep(0.2)
    assert len(calls) == n, "a stopped capture must not call back"
    cap.start()  # still armed: the loop takes the new device as it would a reopened one
    try:
        assert _wait(lambda: len(calls) > n)
        time.sleep(1.0)
        periods = len(calls) - n
        assert periods >= 1 / 0.064 / 2, f"a restarted capture was read {periods} times in 1 s"
        on_loop.call(cap.arm, None)
    finally:
        cap.stop()
    assert len(os.listdir("/proc/self/fd")) == fds, "a device was left open"
