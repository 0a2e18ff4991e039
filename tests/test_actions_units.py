"""The alarm's ringing rules, the LED's alert, the emulator's tool scripts, and the wire
frames for tools checked by the official SDK's strict types."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest
from google.genai import types

from config import LedConfig, LiveConfig
from daemon.actions import alarm
from daemon.actions.alarm import Alarm
from daemon.actions.dispatch import Function, declaration
from daemon.devkit.tool_script import ScriptedCall, ScriptedTurn, load_script
from daemon.live import protocol
from hw.earcons import ALARM, Earcons
from hw.gpio import StatusLed


class Speaker:
    def __init__(self) -> None:
        self.played: list[tuple[str, float]] = []
        self.stopped = 0

    def play_earcon(self, name: str, *, floor: float = 0.0) -> None:
        self.played.append((name, floor))

    def stop_earcon(self) -> None:
        self.stopped += 1


class Light:
    def __init__(self) -> None:
        self.alerts: list[bool] = []

    def alert(self, on: bool) -> None:
        self.alerts.append(on)


def test_alarm_repeats_until_a_press_and_a_press_without_it_is_not_taken(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alarm, "CYCLE_S", 0.05)
    speaker, light = Speaker(), Light()
    a = Alarm(speaker, light, floor=0.49)

    async def main() -> None:
        assert a.silence("press") is False
        a.ring("tea")
        await asyncio.sleep(0.12)
        a.ring("eggs")               # a second timer while ringing: one alarm, both named
        assert a.labels == ["tea", "eggs"]
        assert a.silence("press") is True
        n = len(speaker.played)
        await asyncio.sleep(0.15)
        assert len(speaker.played) == n  # no cycle after the press

    asyncio.run(main())
    assert 3 <= len(speaker.played) <= 4
    assert set(speaker.played) == {(ALARM, 0.49)}
    assert speaker.stopped == 1 and light.alerts == [True, False] and not a.ringing


def test_alarm_gives_up_after_ring_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alarm, "CYCLE_S", 0.02)
    monkeypatch.setattr(alarm, "RING_S", 0.1)
    speaker, light = Speaker(), Light()
    a = Alarm(speaker, light, floor=0.5)

    async def main() -> None:
        a.ring("")
        await asyncio.sleep(0.3)

    asyncio.run(main())
    assert not a.ringing and light.alerts == [True, False] and speaker.stopped == 1
    assert 4 <= len(speaker.played) <= 6


def test_alarm_tone_ignores_the_earcon_switches() -> None:
    from config import EarconsConfig

    off = Earcons(replace(EarconsConfig(), enabled=False, volume=0.0), 24000)
    tone = off.get(ALARM)
    assert tone is not None and abs(int(abs(tone.astype(int)).max()) - 0.6 * 32767) < 0.002 * 32767
    assert off.get("listen_start") is None


def test_led_alert_blinks_over_the_state_and_gives_it_back() -> None:
    led = StatusLed(LedConfig(pin="GPIO25"))
    try:
        led.show("idle")
        led.alert(True)
        assert led.pattern == "alarm"
        led.show("listening")        # the turn goes on underneath
        assert led.pattern == "alarm"
        led.alert(False)
        assert led.pattern == "listening"
    finally:
        led.close()


DECL = declaration(Function("set_timer", "Start a timer.", {
    "type": "object", "required": ["seconds"],
    "properties": {"seconds": {"type": "number", "minimum": 1},
                   "label": {"type": "string", "enum": ["tea"]}}}), non_blocking=True)


def test_setup_tools_and_search_pass_the_sdks_strict_types() -> None:
    cfg = replace(LiveConfig(), google_search=True)
    frame = json.loads(protocol.setup(cfg, tools=[DECL]))
    assert frame["setup"]["tools"] == [{"functionDeclarations": [DECL]}, {"googleSearch": {}}]
    functions, search = (types.Tool.model_validate(t) for t in frame["setup"]["tools"])
    assert functions.function_declarations is not None
    assert functions.function_declarations[0].behavior == types.Behavior.NON_BLOCKING
    assert search.google_search is not None
    assert "tools" not in json.loads(protocol.setup(LiveConfig()))["setup"]


def test_tool_response_with_scheduling_passes_the_sdks_strict_types() -> None:
    frame = protocol.tool_response([protocol.FunctionResponse("c1", "set_timer",
                                                              {"output": {"ok": 1}}, "SILENT"),
                                    protocol.FunctionResponse("c2", "x", {"error": "no"})])
    msg = types.LiveClientMessage.model_validate_json(frame)
    assert msg.tool_response is not None
    first, second = msg.tool_response.function_responses
    assert first.scheduling == types.FunctionResponseScheduling.SILENT and first.id == "c1"
    assert second.scheduling is None


def test_tool_scripts_load_from_a_file_with_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps([{"heard": "quieter", "calls": [
        {"name": "change_volume", "args": {"delta": -10}, "cancel_after_s": 0.5}]}]))
    assert load_script(str(path)) == (ScriptedTurn("quieter", (
        ScriptedCall("change_volume", {"delta": -10}, 0.5),)),)
    path.write_text(json.dumps([{"heard": "porch", "calls": [{"name": "porch"}],
                                 "later": True}, {"heard": "shed", "calls": [], "later": True,
                                                  "ack": ""}]))
    assert load_script(str(path)) == (ScriptedTurn("porch", (ScriptedCall("porch"),), True),
                                      ScriptedTurn("shed", (), True, ""))
    path.write_text('[{"calls": [{"args": {}}]}]')
    with pytest.raises(ValueError, match=r"script.json: not a tool script \(KeyError"):
        load_script(str(path))
