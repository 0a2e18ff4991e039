"""Live API test helpers: the emulator in a background thread, and a LiveClient harness.

Registered as a pytest plugin in tests/conftest.py, so any test can ask for `emulator`; the
fault-matrix tests reuse `EmulatorThread.inject` and `ClientHarness` from here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from config import LiveConfig
from config.apikey import ApiKey
from daemon.devkit.emulator import EmulatorOptions, EmulatorThread
from daemon.live.client import LiveClient
from daemon.live.protocol import Event

TEST_KEY = "pttd-test-key-3f9c1a7e"


def live_config(url: str, **overrides: Any) -> LiveConfig:
    """A LiveConfig aimed at the emulator, with fast reconnects for tests."""
    return replace(LiveConfig(endpoint=url, reconnect_min_s=0.05, reconnect_max_s=1.0),
                   **overrides)


def tone16k(ms: int, hz: float = 300.0, amplitude: int = 10000) -> bytes:
    """A sine at 16 kHz as PCM16LE, the mic format."""
    t = np.arange(16 * ms) / 16000
    return (np.sin(2 * np.pi * hz * t) * amplitude).astype("<i2").tobytes()


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread(EmulatorOptions(pace="burst")) as emu:
        yield emu


@pytest.fixture
def api_key() -> ApiKey:
    return ApiKey("test fixture", TEST_KEY)


class ClientHarness:
    """Runs LiveClient.run() as a task and records what it reports.

        async with ClientHarness(cfg, key) as h:
            await h.wait(lambda: h.client.state == "ready")
    """

    def __init__(self, cfg: LiveConfig, key: ApiKey, **client_kw: Any) -> None:
        self.events: list[Event] = []
        self.states: list[str] = []
        self._changed = asyncio.Event()
        self.client = LiveClient(cfg, key, on_event=self._event, on_state=self._state,
                                 **client_kw)
        self.task: asyncio.Task[None] | None = None

    def _event(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def _state(self, state: str) -> None:
        self.states.append(state)
        self._changed.set()

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.task is not None and self.task.done():
                self.task.result()
                raise AssertionError("the client stopped running")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"condition not met within {timeout:g} s; states "
                                   f"{self.states}, last events {self.events[-5:]}")
            self._changed.clear()
            try:
                async with asyncio.timeout(min(left, 0.05)):
                    await self._changed.wait()
            except TimeoutError:
                pass

    async def ready(self) -> None:
        await self.wait(lambda: self.client.state == "ready")

    async def __aenter__(self) -> ClientHarness:
        self.task = asyncio.get_running_loop().create_task(self.client.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
        assert self.task is not None
        async with asyncio.timeout(10):
            await self.task
