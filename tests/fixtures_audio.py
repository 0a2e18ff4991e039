"""Audio fixtures: ALSA PCMs defined in test configs, and the PulseAudio null-sink rig.

`sim` starts one PulseAudio server per test session (its mic plays a sample counter, so any
captured run can be checked for order and gaps); `sim_env` points ALSA at it for one test.
`alsa_conf` defines unpaced, byte-exact `file` PCMs for one test. `on_loop` is an event loop
running on a thread of its own, as the daemon's: Capture is armed on it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daemon.devkit.simsink import SYSTEM_ALSA_CONF, SimSink

MIC_SECONDS = 120


def counter(start: int, n: int) -> np.ndarray:
    """Samples whose value is their own position modulo 2**16: order and gaps are visible."""
    return (np.arange(start, start + n, dtype=np.int64) & 0xFFFF).astype(np.uint16).view(np.int16)


def counter_start(samples: np.ndarray) -> int | None:
    """The position (mod 2**16) of a contiguous counter run, or None if it is not one."""
    if len(samples) == 0:
        return None
    u = samples.view(np.uint16).astype(np.int64)
    if not (np.diff(u) % 65536 == 1).all():
        return None
    return int(u[0])


def _use(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimSink]:
    workdir = tmp_path_factory.mktemp("sim")
    mic = workdir / "counter.raw"
    counter(0, 16000 * MIC_SECONDS).tofile(mic)
    with SimSink(workdir, mic_file=mic) as sink:
        yield sink


@pytest.fixture
def sim_env(sim: SimSink, monkeypatch: pytest.MonkeyPatch) -> SimSink:
    _use(sim.env, monkeypatch)
    return sim


@pytest.fixture
def fresh_sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimSink]:
    """A server of the test's own, for tests that stop and restart it."""
    with SimSink(tmp_path) as sink:
        _use(sink.env, monkeypatch)
        yield sink


@pytest.fixture
def alsa_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """define(text): add PCM definitions to this test's ALSA config (re-read at each open)."""
    conf = tmp_path / "asound.conf"
    conf.write_text("")
    monkeypatch.setenv("ALSA_CONFIG_PATH", f"{SYSTEM_ALSA_CONF}:{conf}")
    stamp = [int(time.time())]

    def define(text: str) -> Path:
        with open(conf, "a") as f:
            f.write(text + "\n")
        # libasound reloads a config whose mtime changed, compared in whole seconds.
        stamp[0] += 1
        os.utime(conf, (stamp[0], stamp[0]))
        return conf

    return define


class LoopThread:
    """An event loop on a thread of its own; `call(fn, *args)` runs fn on it and returns what
    fn returned (or raises what it raised)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop")
        self.thread.start()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def on_loop() -> Iterator[LoopThread]:
    looper = LoopThread()
    yield looper
    looper.close()
