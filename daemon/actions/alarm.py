"""A ringing timer: the alarm tone repeated on the speaker and "alarm" blinking on the LED, until
a press silences it or RING_S pass.

The tone is played again every CYCLE_S from the event loop (one call_later per cycle, nothing
while quiet), through the same playback stream as replies and earcons, at no less than the
alarm's floor volume. A second timer ending while one rings extends the ringing.

    alarm = Alarm(playback, led, floor=0.49)
    alarm.ring("tea")       # a timer ended
    alarm.silence("press")  # True: it was ringing, the press is taken
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from hw.earcons import ALARM

log = logging.getLogger("pttd.actions")

RING_S = 60.0
CYCLE_S = 1.0


class Speaker(Protocol):
    def play_earcon(self, name: str, *, floor: float = 0.0) -> None: ...
    def stop_earcon(self) -> None: ...


class Light(Protocol):
    def alert(self, on: bool) -> None: ...


class Alarm:
    """See the module docstring."""

    def __init__(self, speaker: Speaker, light: Light, *, floor: float) -> None:
        self.floor = floor
        self.labels: list[str] = []  # the timers ringing now
        self.rung = 0
        self._speaker = speaker
        self._light = light
        self._until = 0.0
        self._started = 0.0
        self._next: asyncio.TimerHandle | None = None

    @property
    def ringing(self) -> bool:
        return bool(self.labels)

    def ring(self, label: str) -> None:
        self.rung += 1
        self.labels.append(label)
        self._until = time.monotonic() + RING_S
        if self._next is None:
            self._started = time.monotonic()
            self._light.alert(True)
            self._cycle()

    def silence(self, why: str) -> bool:
        """Stop ringing; False (nothing done) if it was not ringing."""
        if not self.labels:
            return False
        if self._next is not None:
            self._next.cancel()
            self._next = None
        self._speaker.stop_earcon()
        self._light.alert(False)
        rang = time.monotonic() - self._started
        log.info("alarm for %s silenced (%s) after %.1f s", ", ".join(
            repr(label) if label else "a timer" for label in self.labels), why, rang,
            extra={"PTTD_ALARM": why, "PTTD_ALARM_S": f"{rang:.3f}"})
        self.labels = []
        return True

    def _cycle(self) -> None:
        if time.monotonic() >= self._until:
            self._next = None
            self.silence(f"nobody pressed within {RING_S:g} s")
            return
        self._speaker.play_earcon(ALARM, floor=self.floor)
        self._next = asyncio.get_running_loop().call_later(CYCLE_S, self._cycle)
