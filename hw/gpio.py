"""The push button and the status LED, through gpiozero.

Debounce and the minimum press are our own (`ButtonLogic`, pure and timestamp-driven), not
gpiozero's `bounce_time`: that is not implemented for mock pins, so it could not be tested.

A short tap is ignored without losing the first syllable: a press is confirmed only once it has
been held for `min_press_ms`, and it is reported with the time of its original edge, so the
daemon's pre-roll reaches back from the moment the finger went down. The daemon caps a turn at
`max_turn_s` itself (a timer on the confirmed press), so the cap holds for control-socket
presses too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from config import ButtonConfig, LedConfig


@dataclass(frozen=True, slots=True)
class Pressed:
    """A confirmed press, stamped with the monotonic time its edge came."""

    edge: float


@dataclass(frozen=True, slots=True)
class Released:
    """The confirmed press ended."""


ButtonEvent = Pressed | Released


class ButtonLogic:
    """Edges with timestamps in, confirmed presses and releases out; no I/O, no clock."""

    def __init__(self, *, mode: str = "hold", debounce_ms: int = 20, min_press_ms: int = 150,
                 initially_pressed: bool = False) -> None:
        self.toggle = mode == "toggle"
        self.debounce = debounce_ms / 1000
        self.min_press = min_press_ms / 1000
        self.down = initially_pressed
        # A button already held at start-up starts nothing until it has been let go.
        self._ignore_until_up = initially_pressed
        self._last_edge = float("-inf")
        self._pending: float | None = None   # edge time of a press not yet confirmed
        self._confirmed = False              # the current hold was reported as a press
        self.active = False                  # a turn is running (between Pressed and Released)

    @property
    def deadline(self) -> float | None:
        """When `tick` must be called to confirm the pending press, if one is pending."""
        return None if self._pending is None else self._pending + self.min_press

    def edge(self, pressed: bool, now: float) -> list[ButtonEvent]:
        if pressed == self.down or now - self._last_edge < self.debounce:
            return []
        self._last_edge = now
        self.down = pressed
        if self._ignore_until_up:
            if not pressed:
                self._ignore_until_up = False
            return []
        if pressed:
            self._pending = now
            self._confirmed = False
            return self.tick(now)
        self._pending = None
        if self._confirmed and self.active and not self.toggle:
            self.active = False
            return [Released()]
        return []

    def tick(self, now: float) -> list[ButtonEvent]:
        if self._pending is None or now < self._pending + self.min_press:
            return []
        edge, self._pending = self._pending, None
        self._confirmed = True
        if self.toggle and self.active:
            self.active = False
            return [Released()]
        self.active = True
        return [Pressed(edge)]


class ButtonInput:
    """A gpiozero input pin -> on_press(edge_time) / on_release(), called from gpiozero's thread
    (or a timer thread); the daemon passes thread-safe callbacks.

    A plain DigitalInputDevice, not gpiozero's Button: Button starts a hold-detection thread
    that wakes ten times a second for as long as the daemon runs (measured: 0.08 % of a core,
    a third of the idle budget), for "held" events pttd does not use.
    """

    def __init__(self, cfg: ButtonConfig, on_press: Callable[[float], None],
                 on_release: Callable[[], None], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from gpiozero import DigitalInputDevice

        self._on_press = on_press
        self._on_release = on_release
        self._clock = clock
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.button = DigitalInputDevice(cfg.pin, pull_up=cfg.pull_up, bounce_time=None)
        self.logic = ButtonLogic(mode=cfg.mode, debounce_ms=cfg.debounce_ms,
                                 min_press_ms=cfg.min_press_ms,
                                 initially_pressed=self.button.is_active)
        self.button.when_activated = lambda: self._edge(True)
        self.button.when_deactivated = lambda: self._edge(False)

    def _edge(self, pressed: bool) -> None:
        with self._lock:
            events = self.logic.edge(pressed, self._clock())
            self._schedule()
        self._emit(events)

    def _tick(self) -> None:
        with self._lock:
            events = self.logic.tick(self._clock())
            self._schedule()
        self._emit(events)

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.logic.deadline
        if deadline is not None:
            self._timer = threading.Timer(max(0.0, deadline - self._clock()), self._tick)
            self._timer.daemon = True
            self._timer.start()

    def _emit(self, events: list[ButtonEvent]) -> None:
        for event in events:
            if isinstance(event, Pressed):
                self._on_press(event.edge)
            else:
                self._on_release()

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self.button.close()


# pattern -> (PWM LED: how, plain LED: how). Each state looks different at a glance:
# idle glows dimly, listening is solid, thinking pulses fast, speaking pulses slowly,
# offline blinks rarely, an error flashes quickly three times.
PATTERNS: dict[str, tuple[str, tuple[float, ...]]] = {
    "idle": ("value", (0.05,)),
    "listening": ("value", (1.0,)),
    "thinking": ("pulse", (0.25, 0.25)),
    "speaking": ("pulse", (0.8, 0.8)),
    "offline": ("blink", (0.1, 1.9)),
    "error": ("blink", (0.08, 0.12, 3)),
    "alarm": ("blink", (0.25, 0.25)),
}
ERROR_S = 0.6


class StatusLed:
    """An optional (PWM) LED showing the daemon's state; without `led.pin` it does nothing."""

    def __init__(self, cfg: LedConfig) -> None:
        self.pattern = ""
        self._cfg = cfg
        self._led = None
        self._lock = threading.Lock()
        self._after: threading.Timer | None = None
        self._error_until = 0.0
        self._alert = False
        self._under = ""  # the state to show again when the alert ends
        if cfg.pin:
            from gpiozero import LED, PWMLED

            self._led = PWMLED(cfg.pin) if cfg.pwm else LED(cfg.pin)

    def show(self, pattern: str) -> None:
        """Show a pattern; a state shown during an error flash follows once the flash is over."""
        if pattern not in PATTERNS:
            raise ValueError(f"unknown LED pattern {pattern!r}")
        with self._lock:
            if self._after is not None:
                self._after.cancel()
                self._after = None
            now = time.monotonic()
            if pattern != "error" and now < self._error_until:
                self._after = threading.Timer(self._error_until - now, self.show, [pattern])
                self._after.daemon = True
                self._after.start()
                return
            if pattern == "error":
                self._error_until = now + ERROR_S
            if self._alert:
                self._under = pattern
                return
            self.pattern = pattern
            self._apply(pattern)

    def alert(self, on: bool) -> None:
        """Blink "alarm" over whatever the daemon's state shows (a ringing timer must be seen
        whatever a turn is doing), until alert(False) puts the state back."""
        with self._lock:
            if on == self._alert:
                return
            self._alert = on
            if on:
                self._under, self.pattern = self.pattern, "alarm"
            else:
                self.pattern = self._under
            if self.pattern:
                self._apply(self.pattern)

    def _apply(self, pattern: str) -> None:
        led = self._led
        if led is None:
            return
        how, args = PATTERNS[pattern]
        peak = self._cfg.brightness
        pwm = self._cfg.pwm
        if how == "value":
            level = args[0] * peak
            if pwm:
                led.value = level
            else:
                led.on() if level >= 0.5 else led.off()
        elif how == "pulse" and pwm:
            led.pulse(fade_in_time=args[0], fade_out_time=args[1], background=True)
        elif how == "pulse":
            led.blink(on_time=args[0], off_time=args[1], background=True)
        else:
            on, off, *n = args
            led.blink(on_time=on, off_time=off, n=int(n[0]) if n else None, background=True)

    def close(self) -> None:
        with self._lock:
            if self._after is not None:
                self._after.cancel()
                self._after = None
        if self._led is not None:
            self._led.close()
            self._led = None
