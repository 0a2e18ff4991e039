"""The two clients the bench drives the same way: pttd (as the shipped unit runs it) and the
reference client (tests/bench/reference.py), each started, pressed, released and stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from fixtures_daemon import DaemonRig

from config import AudioConfig
from daemon.control import request
from daemon.devkit.emulator import EmulatorThread
from daemon.devkit.simsink import SimSink

ROOT = Path(__file__).resolve().parent.parent.parent


def unit_nice(unit: Path = ROOT / "systemd" / "pttd.service") -> int:
    """The Nice= the shipped unit runs pttd at: the bench runs the daemon as systemd would."""
    for line in unit.read_text().splitlines():
        if line.startswith("Nice="):
            return int(line.removeprefix("Nice="))
    return 0


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


Client = Pttd | Reference
