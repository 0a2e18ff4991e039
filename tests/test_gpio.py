"""The button and LED through real gpiozero on its mock pin factory; debounce, minimum press,
toggle mode and held-at-start through our own timestamps."""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from config import ButtonConfig, LedConfig
from hw.gpio import PATTERNS, ButtonInput, ButtonLogic, Pressed, Released, StatusLed


@pytest.fixture(autouse=True)
def mock_pins():
    Device.pin_factory = MockFactory(pin_class=MockPWMPin)
    yield Device.pin_factory
    Device.pin_factory.reset()


def test_logic_debounce_min_press_and_release() -> None:
    b = ButtonLogic(debounce_ms=20, min_press_ms=100)
    assert b.edge(True, 1.000) == []
    assert b.edge(False, 1.005) == []          # bounce: ignored
    assert b.edge(True, 1.010) == []           # bounce: ignored
    assert b.deadline == pytest.approx(1.100)
    assert b.tick(1.05) == []
    assert b.tick(1.10) == [Pressed(1.000)]    # confirmed, with the original edge time
    assert b.edge(False, 2.0) == [Released()]


def test_logic_short_tap_is_ignored() -> None:
    b = ButtonLogic(debounce_ms=20, min_press_ms=150)
    assert b.edge(True, 1.0) == []
    assert b.edge(False, 1.1) == []
    assert b.deadline is None
    assert b.tick(2.0) == []


def test_logic_zero_min_press_confirms_at_the_edge() -> None:
    b = ButtonLogic(debounce_ms=0, min_press_ms=0)
    assert b.edge(True, 5.0) == [Pressed(5.0)]
    assert b.edge(False, 5.5) == [Released()]


def test_logic_toggle_mode() -> None:
    b = ButtonLogic(mode="toggle", debounce_ms=10, min_press_ms=50)
    b.edge(True, 1.0)
    assert b.tick(1.05) == [Pressed(1.0)]
    assert b.edge(False, 1.2) == []            # releasing does not end the turn
    b.edge(True, 3.0)
    assert b.tick(3.05) == [Released()]        # the second press sends it
    assert b.edge(False, 3.2) == []
    b.edge(True, 5.0)
    assert b.tick(5.06) == [Pressed(5.0)]


def test_logic_button_held_at_start_does_nothing_until_let_go() -> None:
    b = ButtonLogic(debounce_ms=10, min_press_ms=50, initially_pressed=True)
    assert b.tick(10.0) == []
    assert b.edge(False, 10.0) == []
    b.edge(True, 11.0)
    assert b.tick(11.05) == [Pressed(11.0)]


def _collect() -> tuple[list[object], threading.Event, object, object]:
    got: list[object] = []
    changed = threading.Event()

    def press(edge: float) -> None:
        got.append(("press", edge))
        changed.set()

    def release() -> None:
        got.append("release")
        changed.set()

    return got, changed, press, release


def test_button_input_on_mock_pins(mock_pins: MockFactory) -> None:
    got, changed, press, release = _collect()
    cfg = ButtonConfig(pin="GPIO17", debounce_ms=5, min_press_ms=50)
    button = ButtonInput(cfg, press, release)
    try:
        pin = mock_pins.pin(17)
        t0 = time.monotonic()
        pin.drive_low()                        # pull-up: pressed pulls the pin low
        assert changed.wait(2)
        assert got[0][0] == "press" and t0 <= got[0][1] <= t0 + 0.03
        changed.clear()
        pin.drive_high()
        assert changed.wait(2) and got[-1] == "release"
        got.clear()
        pin.drive_low()
        pin.drive_high()                       # a tap shorter than min_press_ms
        time.sleep(0.15)
        assert got == []
    finally:
        button.close()


def test_button_input_starts_no_thread(mock_pins: MockFactory) -> None:
    """An idle daemon must not wake up: the button adds no polling thread of its own."""
    before = set(threading.enumerate())
    button = ButtonInput(ButtonConfig(pin="GPIO17"), lambda edge: None, lambda: None)
    try:
        assert set(threading.enumerate()) - before == set()
    finally:
        button.close()


def test_button_already_held_at_start_starts_nothing(mock_pins: MockFactory) -> None:
    got, changed, press, release = _collect()
    pin = mock_pins.pin(17)
    pin.drive_low()
    button = ButtonInput(ButtonConfig(pin="GPIO17", min_press_ms=10), press, release)
    try:
        time.sleep(0.1)
        pin.drive_high()
        time.sleep(0.05)
        assert got == []
        pin.drive_low()
        assert changed.wait(2) and got[0][0] == "press"
    finally:
        button.close()


def test_led_patterns_are_distinct_and_drive_the_pin(mock_pins: MockFactory) -> None:
    led = StatusLed(LedConfig(pin="GPIO25", pwm=True, brightness=1.0))
    pin = mock_pins.pin(25)
    try:
        led.show("listening")
        assert pin.state == pytest.approx(1.0)
        led.show("idle")
        assert pin.state == pytest.approx(0.05)
        led.show("offline")
        time.sleep(0.05)
        assert pin.state == pytest.approx(1.0)  # the blink's on phase
        led.show("error")
        led.show("idle")                        # shown once the error flash is over
        assert led.pattern == "error"
        time.sleep(0.8)
        assert led.pattern == "idle" and pin.state == pytest.approx(0.05)
    finally:
        led.close()
    assert len({(how, args) for how, args in PATTERNS.values()}) == len(PATTERNS)
    with pytest.raises(ValueError):
        StatusLed(LedConfig()).show("disco")


def test_no_led_pin_is_a_no_op() -> None:
    led = StatusLed(LedConfig(pin=""))
    led.show("speaking")
    assert led.pattern == "speaking"
    led.close()
