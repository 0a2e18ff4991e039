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
import datetime
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fixtures_daemon import DaemonRig  # noqa: E402

from config import PERIODS_MS, AudioConfig  # noqa: E402
from daemon.control import request  # noqa: E402
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

HOLD_S = 2.0
REPLY_WAIT_S = 6.0
POLL_S = 0.2


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


def shares(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    """Per-thread CPU, % of one core, largest first: where a client's time goes."""
    pct = {name: 100 * (after[name] - before.get(name, 0.0)) / seconds for name in after}
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


def unit_nice(unit: Path = ROOT / "systemd" / "pttd.service") -> int:
    """The Nice= the shipped unit runs pttd at: the bench runs the daemon as systemd would."""
    for line in unit.read_text().splitlines():
        if line.startswith("Nice="):
            return int(line.removeprefix("Nice="))
    return 0


@dataclass
class Run:
    client: str
    figures: dict[str, float] = field(default_factory=dict)


class Pttd:
    name = "pttd"

    period_ms = AudioConfig().period_ms

    def __init__(self, work: Path, sink: SimSink, emu: EmulatorThread) -> None:
        self.rig = DaemonRig(work, sink, emu, config="[earcons]\nenabled = false\n",
                             env={"GPIOZERO_PIN_FACTORY": "mock"}, nice=unit_nice())
        # The production log level, not the rig's debug.
        path = self.rig.config_path
        path.write_text(path.read_text().replace('level = "debug"', 'level = "info"')
                        .replace(f'capture_device = "{sink.capture_device}"',
                                 f'capture_device = "{sink.voice_capture}"')
                        .replace("[audio]\n", f"[audio]\nperiod_ms = {self.period_ms}\n"))

    def start(self) -> float:
        self.rig.start()
        assert self.rig.proc is not None
        self.pid = self.rig.proc.pid
        t0 = self.rig.started_at
        self.rig.wait(lambda: any("READY=1" in n for _, n in self.rig.notifications), 20, "READY")
        ready_at = next(t for t, n in self.rig.notifications if "READY=1" in n)
        return (ready_at - t0) * 1000

    def press(self) -> None:
        self.rig.control("press")

    def release(self) -> None:
        self.rig.control("release")

    def reply_done(self) -> bool:
        return self.rig.status().get("state") == "idle"

    def stats(self) -> dict:
        return self.rig.status().get("stats", {})

    def stop(self) -> None:
        self.rig.stop()
        self.rig.close()


class Reference:
    name = "reference"

    def __init__(self, work: Path, sink: SimSink, emu: EmulatorThread) -> None:
        self.sock = work / "ref.sock"
        self.argv = [sys.executable, "-m", "tests.bench.reference", "--url", emu.url,
                     "--capture", sink.voice_capture, "--playback", sink.playback_device,
                     "--socket", str(self.sock)]
        self.env = {**os.environ, **sink.env, "GEMINI_API_KEY": "bench-key"}
        self.turns = 0

    def start(self) -> float:
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "READY" not in line:
            raise RuntimeError("the reference client did not start")
        return (time.monotonic() - t0) * 1000

    def press(self) -> None:
        self.turns = request(str(self.sock), "press")["turns"]

    def release(self) -> None:
        request(str(self.sock), "release")

    def reply_done(self) -> bool:
        return request(str(self.sock), "status")["turns"] > self.turns

    def stats(self) -> dict:
        return {}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll at 5 Hz: every poll is a control-socket round trip the client under test pays for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(POLL_S)


def one_run(client: Pttd | Reference, seconds: float, idle_s: float, player: Player,
            listener: Listener, emu: EmulatorThread) -> dict[str, float]:
    figures: dict[str, float] = {}
    figures["host_wake_us.p50"], figures["host_wake_us.p99"] = thread_wake_us()
    figures["host_python_ms"] = python_speed_ms()
    figures["start_ready_ms"] = client.start()
    try:
        time.sleep(1.0)
        c0, t0 = thread_cpu(client.pid), time.monotonic()
        time.sleep(idle_s)
        c1, t1 = thread_cpu(client.pid), time.monotonic()
        figures["idle_cpu_pct"] = 100 * (sum(c1.values()) - sum(c0.values())) / (t1 - t0)
        print(f"[bench]   idle, per thread (%): {shares(c0, c1, t1 - t0)}", flush=True)
        c0, t0, stolen = thread_cpu(client.pid), time.monotonic(), steal_s()
        markers: list[float] = []
        reply_delays: list[float] = []
        turns = 0
        while time.monotonic() - t0 < seconds:
            player.play("speech")
            client.press()
            time.sleep(HOLD_S)
            client.release()
            released = time.monotonic()
            if player.marker_written_at is not None:
                markers.append(player.marker_written_at)
            player.play("silence")
            # The reply's end is heard at the sink, not asked for: a status poll every 200 ms
            # was almost half of pttd's event-loop handler time in this window (py-spy), load
            # that the bench, not the workload, put on each client.
            wait_until(functools.partial(listener.reply_over, released), REPLY_WAIT_S)
            due = reply_marker_due(emu.call(lambda e: list(e.audio_sent)), released)
            heard = listener.marker_heard(due) if due is not None else None
            if heard is not None and due is not None:
                reply_delays.append((heard - due) * 1000)
            turns += 1
        c1, t1 = thread_cpu(client.pid), time.monotonic()
        figures["stream_cpu_pct"] = 100 * (sum(c1.values()) - sum(c0.values())) / (t1 - t0)
        figures["host_steal_pct"] = 100 * (steal_s() - stolen) / (t1 - t0) / (os.cpu_count() or 1)
        print(f"[bench]   turns, per thread (%): {shares(c0, c1, t1 - t0)}", flush=True)
        figures["peak_rss_mb"] = peak_rss_mb(client.pid)
        figures["turns"] = turns
        frames, times = emu.call(lambda e: (list(e.frames), list(e.frame_times)))
        delays = [(arrived - at) * 1000 for at in markers
                  if (arrived := marker_arrival(frames, times, at)) is not None]
        if delays:
            figures["input_marker_ms"] = statistics.median(delays)
        if reply_delays:
            figures["reply_marker_ms"] = statistics.median(reply_delays)
        silence = barge_in(client, player, listener)
        if silence is not None:
            figures["barge_in_silence_ms"] = silence
        for name, summary in client.stats().items():
            for key in ("p50", "p99", "max"):
                if key in summary:
                    figures[f"{name}.{key}"] = summary[key]
    finally:
        client.stop()
    return figures


def barge_in(client: Pttd | Reference, player: Player, listener: Listener) -> float | None:
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


# "Added latency on each path <= 1 ms at p99 beyond the period itself": on release that is from
# the period holding the release to activityEnd (release -> activityEnd includes waiting for
# that period, up to one period plus the device's latency, and is shown without a budget).
BUDGETS = {
    "stream_cpu_pct": 2.0, "idle_cpu_pct": 0.2, "peak_rss_mb": 50.0, "start_ready_ms": 400.0,
    "barge_in_silence_ms": 20.0,
    "capture_to_send_ms.p99": 1.0, "receive_to_alsa_ms.p99": 1.0,
    "press_to_activity_start_ms.p99": 1.0, "tail_to_activity_end_ms.p99": 1.0,
}
LABELS = {
    "stream_cpu_pct": "CPU while streaming, % of one core",
    "idle_cpu_pct": "CPU idle, warm session, %",
    "peak_rss_mb": "peak RSS, MB",
    "start_ready_ms": "start -> READY / setupComplete, ms",
    "turns": "turns in the streaming window",
    "input_marker_ms": "black box: input marker -> at the server, ms",
    "reply_marker_ms": "black box: reply marker due -> played by the sink, ms",
    "barge_in_silence_ms": "black box: barge-in press -> sink silent, ms",
    "host_steal_pct": "host: CPU stolen by the hypervisor while taking turns, % of the machine",
    "host_wake_us.p50": "host: one thread waking another, p50, us (before each run)",
    "host_wake_us.p99": "host: one thread waking another, p99, us (before each run)",
    "host_python_ms": "host: a fixed pure-Python loop, ms (before each run; lower is faster)",
}


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:.3g} ({min(values):.3g}-{max(values):.3g})"


def table(runs: list[Run]) -> tuple[str, bool]:
    a = [r.figures for r in runs if r.client == "pttd"]
    b = [r.figures for r in runs if r.client == "reference"]
    keys = list(LABELS) + sorted({k for f in a for k in f} - set(LABELS))
    lines = ["| figure | pttd median (min-max) | reference median (min-max) | ratio | budget |",
             "|---|---|---|---|---|"]
    ok = True
    for key in keys:
        va = [f[key] for f in a if key in f]
        vb = [f[key] for f in b if key in f]
        ratio = (f"{statistics.median(va) / statistics.median(vb):.2f}"
                 if va and vb and statistics.median(vb) else "")
        verdict = ""
        if key in BUDGETS and va:
            passed = statistics.median(va) <= BUDGETS[key]
            if key == "stream_cpu_pct" and vb:
                passed = passed and statistics.median(va) <= 0.5 * statistics.median(vb)
            verdict = f"{'PASS' if passed else 'FAIL'} (<= {BUDGETS[key]:g}"
            verdict += ", <= 0.5x reference)" if key == "stream_cpu_pct" else ")"
            ok &= passed
        lines.append(f"| {LABELS.get(key, key)} | {fmt(va)} | {fmt(vb)} | {ratio} | {verdict} |")
    return "\n".join(lines), ok


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3, help="runs per client (alternating)")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--no-write", action="store_true", help="do not write results.md")
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
                for cls in (Pttd, Reference):
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
                    for cls in (Pttd, Reference):
                        run_dir = work / f"{cls.name}-{i}"
                        run_dir.mkdir()
                        print(f"[bench] run {i + 1}/{args.runs}: {cls.name} "
                              f"({args.idle_seconds:g} s idle + {args.seconds:g} s of turns "
                              "+ a barge-in)", flush=True)
                        runs.append(Run(cls.name, one_run(cls(run_dir, sink, emu), args.seconds,
                                                          args.idle_seconds, player, listener,
                                                          emu)))
            finally:
                player.close()
                listener.close()
    (ROOT / "tests" / "bench" / "last-run.json").write_text(
        json.dumps([{"client": r.client, "figures": r.figures} for r in runs], indent=1))
    text, ok = table(runs)
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in
                         ("websockets", "google-genai", "pyalsaaudio", "numpy", "soxr"))
    header = (f"# pttd benchmark\n\n{datetime.date.today()}, {platform.machine()}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}; {versions}; "
              f"pttd audio.period_ms = {args.period_ms}.\n"
              f"{args.runs} runs per client, alternating; each: {args.idle_seconds:g} s idle "
              f"with a warm session, then {args.seconds:g} s of press-to-talk turns ({HOLD_S:g} s "
              "held, then the echoed reply, paced in real time), then one barge-in. The bench "
              "plays the user's voice into a second null sink (the room) whose monitor is the "
              "microphone, and listens to the speaker sink's monitor. CPU from schedstat, all "
              "threads of the client's process; per-thread shares are printed while it runs. "
              "Before the runs, the installed files are dropped from the page cache (read back "
              "from disk as at boot) and each client starts once, unmeasured. "
              "Medians with min-max; raw figures in last-run.json.\n\n")
    print()
    print(text)
    if not args.no_write:
        (ROOT / "tests" / "bench" / "results.md").write_text(header + text + "\n")
    return 0 if ok else 1
