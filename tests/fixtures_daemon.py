"""`pttd run` as a real child process against the emulator, a PulseAudio null sink reached
through real ALSA PCMs, a test NOTIFY_SOCKET and, when asked, a real journald.

    with DaemonRig(tmp_path, sink, emu) as d:
        d.wait_ready(); d.control("press"); ...; d.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures_audio import counter
from fixtures_journal import WITH_JOURNALD

from daemon.control import request
from daemon.devkit.emulator import EmulatorThread
from daemon.devkit.simsink import SimSink

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "AIzaSyTESTKEY-pttd_e2e_0123456789abcdef"


class DaemonRig:
    def __init__(self, tmp: Path, sink: SimSink, emulator: EmulatorThread | None, *,
                 endpoint: str | None = None, config: str = "", journal: bool = False,
                 key: str = TEST_KEY, env: dict[str, str] | None = None,
                 nice: int = 0) -> None:
        self.tmp = tmp
        self.nice = nice
        self.sink = sink
        self.emulator = emulator
        self.key = key
        self.socket_path = tmp / "control.sock"
        self.config_path = tmp / "pttd.toml"
        self.journal_path = tmp / "journal.json" if journal else None
        endpoint = endpoint or (emulator.url if emulator is not None else "ws://127.0.0.1:9")
        self.config_path.write_text(
            f'[live]\nendpoint = "{endpoint}"\napi_key_file = ""\nreconnect_min_s = 0.2\n'
            f'reconnect_max_s = 2.0\n'
            f'[audio]\ncapture_device = "{sink.capture_device}"\n'
            f'playback_device = "{sink.playback_device}"\n'
            f'[control]\nsocket = "{self.socket_path}"\n'
            '[button]\npin = "GPIO17"\n'
            '[log]\nlevel = "debug"\n' + config)
        self.notify_path = tmp / "notify.sock"
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(self.notify_path))
        self._notify.settimeout(0.2)
        self.notifications: list[tuple[float, str]] = []
        self._env = {**os.environ, **sink.env, "GEMINI_API_KEY": key,
                     "NOTIFY_SOCKET": str(self.notify_path), "PYTHONUNBUFFERED": "1",
                     "STATE_DIRECTORY": str(tmp / "state"),
                     **(env or {})}
        for var in ("PTTD_CONFIG", "GOOGLE_API_KEY", "CREDENTIALS_DIRECTORY"):
            self._env.pop(var, None)
        self.proc: subprocess.Popen[str] | None = None
        self.started_at = 0.0
        self._stderr: list[str] = []
        self._threads: list[threading.Thread] = []
        self._closing = False

    # ------------------------------------------------------------ process

    def start(self) -> DaemonRig:
        argv = [sys.executable, "-m", "daemon", "run", "--config", str(self.config_path)]
        if self.journal_path is not None:
            argv = ["unshare", "-m", "--propagation", "private", str(WITH_JOURNALD),
                    str(self.journal_path), *argv]
        self.started_at = time.monotonic()
        # Its own process group, so close() also ends what the journald wrapper started.
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=self._env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        if self.nice:
            # As systemd applies the unit's Nice=: Popen returns once the child has exec'd and
            # before the daemon starts any thread, so every thread inherits it.
            os.setpriority(os.PRIO_PROCESS, self.proc.pid, self.nice)
        for target in (self._read_notify, self._read_stderr):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _read_notify(self) -> None:
        while not self._closing:
            try:
                data = self._notify.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.notifications.append((time.monotonic(), data.decode()))

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Signal the daemon; return (exit code, seconds it took to exit)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        return rc, time.monotonic() - t0

    def close(self) -> None:
        if self.proc is not None:
            # After a failed test the daemon may still run, under the wrapper or orphaned by it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self._closing = True
        for t in self._threads:
            t.join(2)
        self._notify.close()

    def __enter__(self) -> DaemonRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ talking to it

    def control(self, command: str, timeout: float = 5.0) -> dict[str, Any]:
        return request(str(self.socket_path), command, timeout)

    def wait(self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"pttd exited ({self.proc.returncode}) while waiting for "
                                     f"{what}:\n{self.stderr[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.stderr[-4000:]}")
            time.sleep(0.02)

    def status(self) -> dict[str, Any]:
        try:
            return self.control("status")
        except (OSError, ValueError):
            return {}

    def wait_state(self, *states: str, timeout: float = 20.0) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def check() -> bool:
            nonlocal result
            result = self.status()
            return result.get("state") in states

        self.wait(check, timeout, f"state in {states}")
        return result

    def wait_ready(self, timeout: float = 20.0) -> None:
        self.wait(lambda: any("READY=1" in n for _, n in self.notifications), timeout, "READY=1")
        self.wait_state("idle", timeout=timeout)

    def journal(self) -> list[dict[str, str]]:
        assert self.journal_path is not None, "DaemonRig(journal=True) reads the journal"
        entries = [json.loads(x) for x in self.journal_path.read_text().splitlines() if x]
        return [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "pttd"]

    def turn_records(self) -> list[dict[str, str]]:
        return [e for e in self.journal() if "PTTD_OUTCOME" in e]


@pytest.fixture(scope="module")
def counter_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimSink]:
    """A sound card of the module's own whose microphone plays a sample counter."""
    workdir = tmp_path_factory.mktemp("rig")
    mic = workdir / "counter.raw"
    counter(0, 16000 * 600).tofile(mic)
    with SimSink(workdir, mic_file=mic) as sink:
        yield sink
