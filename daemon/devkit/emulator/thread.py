"""The emulator on its own loop in a background thread, for tests and the demo."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from daemon.devkit.emulator.server import Emulator
from daemon.devkit.emulator.state import EmulatorOptions, Session


class EmulatorThread:
    """The emulator on its own loop in a background thread, for tests whose client runs
    elsewhere (another loop, or `pttd run` as a subprocess).

        with EmulatorThread(EmulatorOptions(pace="burst")) as emu:
            ...connect to emu.url...; emu.inject("close", code=1011)
            emu.wait_for(lambda e: len(e.sessions) == 2)
    """

    def __init__(self, opts: EmulatorOptions | None = None, **overrides: Any) -> None:
        self.opts = replace(opts or EmulatorOptions(), **overrides)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="emulator",
                                        daemon=True)
        self._changed = threading.Condition()
        self.emulator = Emulator(self.opts, on_change=self._notify)
        self.url = ""

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        self._run(self.emulator.start())
        self.url = self.emulator.url
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self.emulator.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def call(self, fn: Callable[[Emulator], Any]) -> Any:
        """Run fn(emulator) on the emulator's loop and return its result (directly once the
        emulator has stopped, so tests can inspect it after the `with` block)."""
        if not self._thread.is_alive():
            return fn(self.emulator)

        async def run() -> Any:
            return fn(self.emulator)
        return self._run(run())

    def inject(self, kind: str, **kw: Any) -> None:
        self.call(lambda e: e.inject(kind, **kw))

    def wait_for(self, predicate: Callable[[Emulator], bool], timeout: float = 10.0) -> None:
        """Block until predicate(emulator), evaluated on the emulator's loop, holds."""
        deadline = time.monotonic() + timeout
        while not self.call(predicate):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"emulator condition not met within {timeout:g} s")
            with self._changed:
                self._changed.wait(min(left, 0.05))

    @property
    def frames(self) -> list[tuple[int, Any]]:
        return self.call(lambda e: list(e.frames))

    @property
    def sessions(self) -> list[Session]:
        return self.call(lambda e: list(e.sessions))

