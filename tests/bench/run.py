"""The bench itself: pttd against a reference client built like the official quickstart.

Both run on the same emulator (echo mode, replies paced in real time), the same ALSA PCMs (a
PulseAudio null sink through the ALSA pulse plugin), the same speech as the microphone, and are
driven the same way through a control socket, in alternating runs (A B A B ...). Printed: one
table of medians with min-max and the pttd/reference ratio, PASS/FAIL per budget row; written
to tests/bench/results.md. Started by `python -m tests.bench`, after the installed files are
settled (see __main__).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from config import PERIODS_MS  # noqa: E402
from daemon.devkit.demo import PHRASES, speak  # noqa: E402
from daemon.devkit.emulator import EmulatorOptions, EmulatorThread  # noqa: E402
from daemon.devkit.simsink import SimSink  # noqa: E402
from daemon.stats import LatencyStats  # noqa: E402
from tests.bench.blackbox import (  # noqa: E402
    Listener,
    Player,
    marker_arrival,
    reply_marker_due,
)
from tests.bench.clients import Client, Pttd, Reference  # noqa: E402
from tests.bench.report import Run, table, thread_table  # noqa: E402

HOLD_S = 2.0
REPLY_WAIT_S = 6.0
POLL_S = 0.2
# Turns that time the reply's first sound (and count the gaps heard in a reply paced in real
# time), and turns whose reply arrives with random jitter (the first of those unmeasured: the
# network turns jittery and each client meets it once).
SOUND_TURNS = 3
JITTER_TURNS = 4
JITTER_MS = 40.0


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name, from schedstat (nanoseconds: the clock-tick counts in
    /proc/PID/stat resolve only 0.1 % over a 10 s window, half the idle budget)."""
    by_name: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            ns = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        by_name[name] = by_name.get(name, 0.0) + ns / 1e9
    return by_name


def shares(before: dict[str, float], after: dict[str, float], seconds: float
           ) -> dict[str, float]:
    """Per-thread CPU, % of one core: where a client's time goes."""
    return {name: 100 * (after[name] - before.get(name, 0.0)) / seconds for name in after}


class Phases:
    """Per-thread CPU split by what the turns were doing: the button held, or the reply
    playing (from the release until the sink fell quiet)."""

    def __init__(self) -> None:
        self.cpu: dict[str, dict[str, float]] = {"held": {}, "replying": {}}
        self.seconds = {"held": 0.0, "replying": 0.0}
        self._current: tuple[str, dict[str, float], float] | None = None

    def begin(self, phase: str | None, pid: int) -> None:
        """The phase from now (None: none that is counted) for the client at `pid`."""
        now, cpu = time.monotonic(), thread_cpu(pid)
        if self._current is not None:
            name, before, since = self._current
            self.seconds[name] += now - since
            for thread, seconds in cpu.items():
                total = self.cpu[name]
                total[thread] = total.get(thread, 0.0) + seconds - before.get(thread, 0.0)
        self._current = (phase, cpu, now) if phase is not None else None

    def shares(self) -> dict[str, dict[str, float]]:
        return {name: {thread: 100 * s / self.seconds[name] for thread, s in cpu.items()}
                for name, cpu in self.cpu.items() if self.seconds[name] > 0}


def show(pct: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in
                     sorted(pct.items(), key=lambda kv: -kv[1]) if value >= 0.005)


def steal_s() -> float:
    """CPU seconds the hypervisor gave to other guests (all vCPUs): on a shared host the
    sub-millisecond rows move with it, so each run reports how noisy its machine was."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def thread_wake_us(samples: int = 200) -> tuple[float, float]:
    """p50 and p99 of one thread waking another (an Event set 5 ms apart): the hop every
    cross-thread handoff pays, as this machine delivers it right now."""
    event, lat, sent = threading.Event(), LatencyStats(samples), [0.0]

    def waiter() -> None:
        for _ in range(samples):
            event.wait()
            lat.record(sent[0], time.perf_counter())
            event.clear()

    thread = threading.Thread(target=waiter)
    thread.start()
    for _ in range(samples):
        time.sleep(0.005)
        sent[0] = time.perf_counter()
        event.set()
        while event.is_set():
            time.sleep(0.001)
    thread.join()
    summary = lat.summary()
    return summary["p50"] * 1000, summary["p99"] * 1000


def python_speed_ms() -> float:
    """The best of three runs of a fixed pure-Python loop: import-bound start-up and per-wake
    interpreter work scale with it, and a shared host's CPU speed drifts by 2x within a day."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        sum(range(2_000_000))
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll at 5 Hz: every poll is a control-socket round trip the client under test pays for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(POLL_S)


def one_run(client: Client, seconds: float, idle_s: float, player: Player,
            listener: Listener, emu: EmulatorThread) -> Run:
    run = Run(client.name)
    figures = run.figures
    figures["host_wake_us.p50"], figures["host_wake_us.p99"] = thread_wake_us()
    figures["host_python_ms"] = python_speed_ms()
    figures["start_ready_ms"] = client.start()
    try:
        time.sleep(1.0)
        c0, t0 = thread_cpu(client.pid), time.monotonic()
        time.sleep(idle_s)
        c1, t1 = thread_cpu(client.pid), time.monotonic()
        figures["idle_cpu_pct"] = 100 * (sum(c1.values()) - sum(c0.values())) / (t1 - t0)
        run.threads["idle"] = shares(c0, c1, t1 - t0)
        print(f"[bench]   idle, per thread (%): {show(run.threads['idle'])}", flush=True)
        c0, t0, stolen = thread_cpu(client.pid), time.monotonic(), steal_s()
        markers: list[float] = []
        reply_delays: list[float] = []
        turns = 0
        phases = Phases()
        while time.monotonic() - t0 < seconds:
            player.play("speech")
            client.press()
            phases.begin("held", client.pid)
            time.sleep(HOLD_S)
            client.release()
            released = time.monotonic()
            phases.begin("replying", client.pid)
            if player.marker_written_at is not None:
                markers.append(player.marker_written_at)
            player.play("silence")
            # The reply's end is heard at the sink, not asked for: a status poll every 200 ms
            # was almost half of pttd's event-loop handler time in this window (py-spy), load
            # that the bench, not the workload, put on each client.
            wait_until(functools.partial(listener.reply_over, released), REPLY_WAIT_S)
            phases.begin(None, client.pid)
            due = reply_marker_due(emu.call(lambda e: list(e.audio_sent)), released)
            heard = listener.marker_heard(due) if due is not None else None
            if heard is not None and due is not None:
                reply_delays.append((heard - due) * 1000)
            turns += 1
        c1, t1 = thread_cpu(client.pid), time.monotonic()
        figures["stream_cpu_pct"] = 100 * (sum(c1.values()) - sum(c0.values())) / (t1 - t0)
        figures["host_steal_pct"] = 100 * (steal_s() - stolen) / (t1 - t0) / (os.cpu_count() or 1)
        run.threads["turns"] = shares(c0, c1, t1 - t0)
        run.threads.update(phases.shares())
        for window in ("turns", "held", "replying"):
            pct = run.threads.get(window, {})
            print(f"[bench]   {window}, per thread (%): {show(pct)}", flush=True)
        figures["peak_rss_mb"] = peak_rss_mb(client.pid)
        figures["turns"] = turns
        frames, times = emu.call(lambda e: (list(e.frames), list(e.frame_times)))
        delays = [(arrived - at) * 1000 for at in markers
                  if (arrived := marker_arrival(frames, times, at)) is not None]
        if delays:
            figures["input_marker_ms"] = statistics.median(delays)
        if reply_delays:
            figures["reply_marker_ms"] = statistics.median(reply_delays)
        firsts, steady = tone_turns(client, player, listener, SOUND_TURNS)
        if firsts:
            figures["first_reply_sound_ms"] = statistics.median(firsts)
            figures["steady_gaps"] = sum(steady)
        emu.call(lambda e: setattr(e, "opts", dataclasses.replace(e.opts, jitter_ms=JITTER_MS)))
        try:
            _, gaps = tone_turns(client, player, listener, JITTER_TURNS)
        finally:
            emu.call(lambda e: setattr(e, "opts", dataclasses.replace(e.opts, jitter_ms=0.0)))
        if len(gaps) > 1:
            figures["jitter_gaps"] = sum(gaps[1:])
        silence = barge_in(client, player, listener)
        if silence is not None:
            figures["barge_in_silence_ms"] = silence
        for name, summary in client.stats().items():
            for key in ("p50", "p99", "max"):
                if key in summary:
                    figures[f"{name}.{key}"] = summary[key]
    finally:
        client.stop()
    return run


def tone_turns(client: Client, player: Player, listener: Listener,
               turns: int) -> tuple[list[float], list[int]]:
    """Turns of a steady tone, whose echo sounds from its first sample: per turn, ms from the
    release to the reply's first sound at the sink, and the gaps heard inside the reply."""
    firsts: list[float] = []
    gaps: list[int] = []
    for _ in range(turns):
        player.play("tone")
        time.sleep(1.0)  # the room's buffer: the pre-roll hears the tone too
        client.press()
        time.sleep(1.0)
        client.release()
        released = time.monotonic()
        player.play("silence")
        wait_until(functools.partial(listener.reply_over, released), REPLY_WAIT_S)
        first = listener.first_loud_after(released)
        if first is not None:
            firsts.append((first - released) * 1000)
            gaps.append(listener.gaps_after(first))
    print(f"[bench]   tone turns: first sound {', '.join(f'{v:.0f}' for v in firsts)} ms, "
          f"gaps {gaps}", flush=True)
    return firsts, gaps


def barge_in(client: Client, player: Player, listener: Listener) -> float | None:
    """Press while the echoed tone plays; ms until the sink falls silent (None: not measured)."""
    player.play("tone")
    client.press()
    time.sleep(HOLD_S)
    client.release()
    player.play("silence")
    # Press half a second into the echoed tone, however late it starts (the room's buffer and
    # the client's last capture period both delay it).
    wait_until(lambda: listener.loud_before(time.monotonic()), REPLY_WAIT_S)
    time.sleep(0.5)
    pressed = time.monotonic()
    if not listener.loud_before(pressed):
        return None
    client.press()
    silent = listener.silent_after(pressed)
    time.sleep(0.3)
    client.release()
    wait_until(client.reply_done, REPLY_WAIT_S)
    return None if silent is None else silent * 1000


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3, help="runs per client (alternating)")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--no-write", action="store_true",
                        help="write neither results.md nor last-run.json")
    parser.add_argument("--only", choices=("pttd", "reference"),
                        help="measure one client (while tuning; budgets compare both)")
    parser.add_argument("--period-ms", type=int, choices=PERIODS_MS, default=Pttd.period_ms,
                        help=f"pttd's audio.period_ms (the shipped default is {Pttd.period_ms})")
    args = parser.parse_args()
    Pttd.period_ms = args.period_ms
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="pttd-bench-") as tmp:
        work = Path(tmp)
        print("[bench] making the user's voice (espeak-ng speech)", flush=True)
        speech = np.concatenate([speak(p, work) for p in PHRASES])
        with SimSink(work) as sink, EmulatorThread(EmulatorOptions(pace="realtime")) as emu:
            os.environ.update(sink.env)
            player = Player(sink.voice_playback, speech)
            listener = Listener(sink.plain_capture)
            try:
                clients = [c for c in (Pttd, Reference) if args.only in (None, c.name)]
                for cls in clients:
                    # One unmeasured start each reads the files back from disk, so the first
                    # measured start -> READY is not a cold one.
                    warm = work / f"{cls.name}-warm-up"
                    warm.mkdir()
                    client = cls(warm, sink, emu)
                    try:
                        print(f"[bench] warm-up start: {cls.name}, "
                              f"{client.start():.0f} ms to READY", flush=True)
                    finally:
                        client.stop()
                for i in range(args.runs):
                    for cls in clients:
                        run_dir = work / f"{cls.name}-{i}"
                        run_dir.mkdir()
                        print(f"[bench] run {i + 1}/{args.runs}: {cls.name} "
                              f"({args.idle_seconds:g} s idle + {args.seconds:g} s of turns "
                              "+ a barge-in)", flush=True)
                        runs.append(one_run(cls(run_dir, sink, emu), args.seconds,
                                            args.idle_seconds, player, listener, emu))
            finally:
                player.close()
                listener.close()
    if not args.no_write:
        (ROOT / "tests" / "bench" / "last-run.json").write_text(
            json.dumps([{"client": r.client, "figures": r.figures, "threads": r.threads}
                        for r in runs], indent=1))
    text, ok = table(runs)
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in
                         ("websockets", "google-genai", "pyalsaaudio", "numpy", "soxr"))
    header = (f"# pttd benchmark\n\n{datetime.date.today()}, {platform.machine()}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}; {versions}; "
              f"pttd audio.period_ms = {args.period_ms}.\n"
              f"{args.runs} runs per client, alternating; each: {args.idle_seconds:g} s idle "
              f"with a warm session, then {args.seconds:g} s of press-to-talk turns ({HOLD_S:g} s "
              "held, then the echoed reply, paced in real time), then "
              f"{SOUND_TURNS} turns of a steady tone (release -> first reply sound), "
              f"{JITTER_TURNS} tone turns whose reply chunks arrive up to {JITTER_MS:g} ms early "
              "or late at random (gaps counted from the second), then one barge-in. The bench "
              "plays the user's voice into a second null sink (the room) whose monitor is the "
              "microphone, and listens to the speaker sink's monitor. CPU from schedstat, all "
              "threads of the client's process; per-thread shares are printed while it runs. "
              "Before the runs, the installed files are dropped from the page cache (read back "
              "from disk as at boot) and each client starts once, unmeasured. "
              "Medians with min-max; raw figures in last-run.json.\n\n")
    threads = ("\n\nWhere the CPU goes, per thread (% of one core, medians over the runs; "
               "from schedstat; the turns split into the button held and the reply playing, "
               "from the release until the sink fell quiet):\n\n" + thread_table(runs))
    print()
    print(text + threads)
    if not args.no_write:
        (ROOT / "tests" / "bench" / "results.md").write_text(header + text + threads + "\n")
    return 0 if ok else 1
