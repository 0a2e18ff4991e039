"""Local actions through `pttd run`: the emulator makes the model's function calls, real ALSA
PCMs on a PulseAudio null sink play the result, the state file and the control socket are
real. One test per built-in behaviour, one for configured commands, one for bad calls."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures_actions import QUIET, again, cli, peak, responses, say, turn
from fixtures_daemon import DaemonRig

from daemon.actions.alarm import CYCLE_S
from daemon.actions.volume import alarm_gain
from daemon.devkit.emulator import EmulatorThread
from daemon.devkit.simsink import SimSink
from daemon.devkit.tool_script import ScriptedCall
from hw.earcons import ALARM_LEVEL


@pytest.mark.parametrize("tools_emu", [(
    say(ScriptedCall("set_volume", {"percent": 50})),
    say(ScriptedCall("change_volume", {"delta": -20})),
)], indirect=True)
def test_volume_by_voice_and_cli_scales_the_reply_and_survives_a_restart(
        tmp_path: Path, counter_sink: SimSink, tools_emu: EmulatorThread) -> None:
    with DaemonRig(tmp_path, counter_sink, tools_emu, config=QUIET) as d:
        d.wait_ready()
        assert d.status()["volume"] == 1.0
        before = len(counter_sink.written())
        assert turn(d)["volume"] == 0.5
        # The spoken confirmation (the emulator's tone, peak 8000) played at 50 %: gain 0.25.
        assert abs(peak(counter_sink.written()[before:]) - 8000 * 0.25) <= 2
        assert turn(d)["volume"] == 0.3
        rc, answer = cli(d, "volume", "+5")
        assert rc == 0 and answer["volume"] == 0.35 and answer["result"]["was_percent"] == 30
        rc, answer = cli(d, "volume", "loud")
        assert rc == 1 and "give a percentage 0-100" in answer["error"]
        assert d.stop()[0] == 0
    got = responses(tools_emu)
    assert got["call-1"]["response"] == {"output": {"volume_percent": 50, "was_percent": 100}}
    assert got["call-1"]["scheduling"] == "SILENT" and got["call-1"]["name"] == "set_volume"
    assert got["call-2"]["response"]["output"]["volume_percent"] == 30
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    assert saved["volume"] == 0.35
    with again(tmp_path, counter_sink, tools_emu) as d:
        d.wait_ready()
        assert d.status()["volume"] == 0.35
        assert d.stop()[0] == 0


def alarm_runs(pcm: bytes, rate: int = 24000) -> np.ndarray:
    """Per 10 ms block: True where the block is the alarm tone (loud, at 1760 Hz)."""
    x = np.frombuffer(pcm[: len(pcm) // 480 * 480], dtype="<i2").astype(np.float64)
    blocks = x.reshape(-1, 240)
    loud = np.abs(blocks).max(axis=1) > 1000
    zc = (np.diff(np.signbit(blocks), axis=1) != 0).sum(axis=1)  # 1760 Hz: ~35 per 10 ms
    return loud & (abs(zc - 2 * 1760 * 240 / rate) <= 3)


@pytest.mark.parametrize("tools_emu", [(
    say(ScriptedCall("set_volume", {"percent": 0}),
        ScriptedCall("set_timer", {"seconds": 4, "label": "tea"})),
    say(ScriptedCall("list_timers")),
)], indirect=True)
def test_timer_rings_with_earcons_off_at_volume_0_until_a_press_that_starts_no_turn(
        tmp_path: Path, counter_sink: SimSink, tools_emu: EmulatorThread) -> None:
    with DaemonRig(tmp_path, counter_sink, tools_emu, config=QUIET, journal=True) as d:
        d.wait_ready()
        start = len(counter_sink.written())
        st = turn(d)
        assert st["volume"] == 0.0
        d.wait(lambda: d.status()["timers"] == [{"label": "tea", "left_s": 0.0,
                                                 "ringing": True}], 8, "the alarm")
        time.sleep(2.5)  # rings on
        pressed = d.control("press")
        assert pressed["state"] == "idle" and pressed["timers"] == []
        time.sleep(1.0)
        silenced_at = len(counter_sink.written())
        time.sleep(1.5)
        after = len(counter_sink.written())
        assert d.control("release")["state"] == "idle"
        turn(d)
        assert d.stop()[0] == 0
    # With earcons off and the volume at 0, everything in the speaker until the press is the
    # alarm, at the floor level: one tone per cycle while it rang, none after the press.
    (silenced,) = [e for e in d.journal() if e.get("PTTD_ALARM") == "press"]
    rang_s = float(silenced["PTTD_ALARM_S"])
    rang = counter_sink.written()[start:silenced_at]
    runs = alarm_runs(rang).astype(np.int8)
    onsets = int((np.diff(runs, prepend=0) == 1).sum())
    tones = 4 * (int(rang_s / CYCLE_S) + 1)     # four beeps a cycle
    assert tones - 4 <= onsets <= tones
    expected = ALARM_LEVEL * alarm_gain(1.0) * 32767
    assert abs(peak(rang) - expected) <= 0.02 * expected
    # Silenced: nothing more went to the speaker, and the press started no turn.
    assert after == silenced_at
    starts = [m for _, m in tools_emu.frames if "activityStart" in m.get("realtimeInput", {})]
    assert len(starts) == 2
    rings = [e for e in d.journal() if "PTTD_TIMER_LATE_MS" in e]
    assert len(rings) == 1 and 0 <= int(rings[0]["PTTD_TIMER_LATE_MS"]) < 100
    tools = [e for e in d.journal() if "PTTD_TOOL" in e]
    assert [(e["PTTD_TOOL"], e["PTTD_TOOL_OUTCOME"]) for e in tools] == [
        ("set_volume", "ok"), ("set_timer", "ok"), ("list_timers", "ok")]
    assert all(int(e["PTTD_TOOL_MS"]) < 500 for e in tools)
    got = responses(tools_emu)
    assert got["call-2"]["response"]["output"]["rings_in"] == "4 seconds"
    assert got["call-3"]["response"] == {"output": {"timers": [], "ringing": []}}


@pytest.mark.parametrize("tools_emu", [(
    say(ScriptedCall("set_timer", {"seconds": 3600, "label": "roast"}),
        ScriptedCall("set_timer", {"seconds": 120})),
    say(ScriptedCall("cancel_timer", {})),
    say(ScriptedCall("cancel_timer", {"label": "bread"})),
)], indirect=True)
def test_timers_by_voice_and_cli_survive_a_restart_and_ring_after_it(
        tmp_path: Path, counter_sink: SimSink, tools_emu: EmulatorThread) -> None:
    with DaemonRig(tmp_path, counter_sink, tools_emu, config=QUIET) as d:
        d.wait_ready()
        turn(d)
        turn(d)     # cancels the next one due: the two-minute timer
        rc, answer = cli(d, "timer", "1h30m", "Earl", "Grey")
        assert rc == 0 and answer["result"]["rings_in"] == "1 hour 30 minutes"
        rc, answer = cli(d, "timer", "10s", "eggs")
        assert rc == 0
        rc, answer = cli(d, "timer", "soon")
        assert rc == 1 and "'soon' is not a duration" in answer["error"]
        turn(d)     # no timer called bread: an error the model can read out
        rc, listed = cli(d, "timers")
        assert [t["label"] for t in listed["timers"]] == ["eggs", "roast", "Earl Grey"]
        assert d.stop()[0] == 0
    got = responses(tools_emu)
    assert got["call-3"]["response"]["output"]["cancelled"] == "the 2 minutes timer"
    assert got["call-4"]["response"]["error"].startswith("no timer called 'bread'")
    with again(tmp_path, counter_sink, tools_emu) as d:
        d.wait_ready()
        timers = d.status()["timers"]
        assert [t["label"] for t in timers] == ["eggs", "roast", "Earl Grey"]
        assert [t["due"] for t in timers] == [t["due"] for t in listed["timers"]]
        d.wait(lambda: d.status()["timers"][0].get("ringing"), 15, "the eggs timer to ring")
        rc, answer = cli(d, "timer", "cancel", "earl grey")
        assert rc == 0 and [t["label"] for t in answer["timers"]] == ["eggs", "roast"]
        assert d.stop()[0] == 0
    (late_ms,) = re.findall(r"timer 'eggs' rings \[PTTD_TIMER=eggs PTTD_TIMER_LATE_MS=(\d+)\]",
                            d.stderr)
    assert int(late_ms) < 100
