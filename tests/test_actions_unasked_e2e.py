"""What the model says when no turn asked for it, through `pttd run` with the emulator and real
ALSA PCMs on a PulseAudio null sink: a slow command's result, spoken in a model turn of its own
after the user's turn ended (NON_BLOCKING, WHEN_IDLE), is heard; and audio from a server that
never ends its turn, asked for or not, plays, then ends by itself, so the speaker is never
wedged."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures_actions import QUIET, responses, turn
from fixtures_daemon import DaemonRig

from daemon.devkit.emulator import EmulatorOptions, EmulatorThread
from daemon.devkit.emulator.state import audio_frame
from daemon.devkit.simsink import SimSink
from daemon.devkit.tool_script import ScriptedCall, ScriptedTurn
from daemon.live.protocol import OUTPUT_RATE
from daemon.turns import ASKED_REPLY_QUIET_S

PORCH = QUIET + '''
[[tools.command]]
name = "porch_light"
description = "Switch the porch light on."
argv = ["/bin/sh", "-c", "sleep 2; echo the porch light is on"]
'''


def said_since(emu: EmulatorThread, since: float) -> list[bytes]:
    """The reply audio chunks the emulator sent after `since`."""
    return [c for at, c in emu.call(lambda e: list(e.audio_sent)) if at > since]


def played_in_order(chunks: list[bytes], heard: bytes) -> bool:
    """Every chunk is in `heard`, in order (a chunk that came late has silence before it)."""
    at = 0
    for chunk in chunks:
        at = heard.find(chunk, at)
        if at < 0:
            return False
        at += len(chunk)
    return True


@pytest.mark.parametrize("tools_emu", [
    (ScriptedTurn("Turn on the porch light.", (ScriptedCall("porch_light"),), later=True),),
    (ScriptedTurn("Turn on the porch light.", (ScriptedCall("porch_light"),), later=True,
                  ack=""),),
], indirect=True, ids=["one-moment", "call-alone"])
def test_a_slow_commands_result_spoken_after_the_turn_is_heard(
        tmp_path: Path, counter_sink: SimSink, tools_emu: EmulatorThread) -> None:
    with DaemonRig(tmp_path, counter_sink, tools_emu, config=PORCH, journal=True) as d:
        d.wait_ready()
        # The model calls the command, says "One moment." (or nothing) and ends its turn: the
        # turn is over, and not as a failure, while the command still runs.
        assert turn(d)["outcomes"] == {"completed": 1}
        asked_over = time.monotonic()
        before = len(counter_sink.written())
        # Its answer goes back; the model speaks it unasked: the daemon shows it speaking...
        d.wait_state("speaking", timeout=10)
        d.wait(lambda: d.status()["outcomes"] == {"completed": 2}, 20, "the spoken result")
        assert d.status()["state"] == "idle"
        heard = counter_sink.written()[before:]
        answer = responses(tools_emu)["call-1"]
        result = said_since(tools_emu, answer["at"])
        # ... and the next press-to-talk turn works as ever.
        assert turn(d)["outcomes"] == {"completed": 3}
        assert d.stop()[0] == 0
    assert answer["response"] == {"output": {"exit_status": 0,
                                             "output": "the porch light is on\n"}}
    assert answer["scheduling"] == "WHEN_IDLE" and answer["at"] > asked_over
    # Every sample the model spoke about the result reached the speaker, in order.
    assert sum(map(len, result)) >= OUTPUT_RATE * 2 // 2 and played_in_order(result, heard)
    assert any("STATUS=speaking" in n for at, n in d.notifications if at > asked_over)
    records = d.turn_records()
    assert [r["PTTD_UNASKED"] for r in records] == ["no", "yes", "no"]
    # The turn that called has its answer in the call (not "the model chose not to answer").
    assert records[0]["PTTD_OUTCOME"] == "completed"
    unasked = records[1]
    assert unasked["PTTD_OUTCOME"] == "completed" and unasked["PTTD_TURN"] == "2"
    # What the model said, though its transcript came before its audio.
    assert unasked["PTTD_OUTPUT_TEXT"] == ('porch_light: {"exit_status": 0, '
                                           '"output": "the porch light is on\\n"}')
    assert unasked["PTTD_REPLY_S"] == f"{sum(map(len, result)) / 2 / OUTPUT_RATE:.2f}"
    # No press, nothing sent: no press-to-start figure, and not the last turn's audio.
    assert unasked["PTTD_PRESS_TO_START_MS"] == "" and unasked["PTTD_AUDIO_SENT_S"] == "0.00"


def tone(seconds: float, hz: float = 523.0) -> bytes:
    t = np.arange(int(OUTPUT_RATE * seconds)) / OUTPUT_RATE
    return (np.sin(2 * math.pi * hz * t) * 6000).astype("<i2").tobytes()


def test_audio_from_a_server_that_never_ends_its_turn_plays_then_ends_by_itself(
        tmp_path: Path, counter_sink: SimSink) -> None:
    pcm = tone(1.0)
    with EmulatorThread(EmulatorOptions(pace="burst")) as emu, \
            DaemonRig(tmp_path, counter_sink, emu, config=QUIET, journal=True) as d:
        d.wait_ready()
        before = len(counter_sink.written())
        emu.inject("raw", data=audio_frame(pcm, OUTPUT_RATE))   # and no turnComplete, ever
        d.wait_state("speaking", timeout=10)
        d.wait_state("idle", timeout=15)
        assert d.status()["outcomes"] == {"completed": 1}
        assert pcm in counter_sink.written()[before:], "the audio was not played out whole"
        # The server's end, arriving late after all, belongs to that reply: the next turn is
        # not cut short by it.
        emu.inject("raw", data=b'{"serverContent": {"turnComplete": true}}')
        time.sleep(0.3)
        assert turn(d)["outcomes"] == {"completed": 2}
        assert d.stop()[0] == 0
    messages = [e.get("MESSAGE", "") for e in d.journal()]
    assert "the server did not end the reply; it ends after 2 s without audio" in messages
    assert not any("Traceback" in m for m in messages) and "Traceback" not in d.stderr
    records = d.turn_records()
    assert [(r["PTTD_UNASKED"], r["PTTD_OUTCOME"]) for r in records] == [
        ("yes", "completed"), ("no", "completed")]
    assert records[0]["PTTD_REPLY_S"] == "1.00"


def test_a_reply_the_user_asked_for_whose_server_stalls_ends_by_itself(
        tmp_path: Path, counter_sink: SimSink) -> None:
    """The server stops sending in the middle of an asked reply and never ends it: what came
    plays, and the speaker goes back to idle without waiting for the next press."""
    with EmulatorThread(EmulatorOptions(pace="realtime")) as emu, \
            DaemonRig(tmp_path, counter_sink, emu, config=QUIET, journal=True) as d:
        d.wait_ready()
        d.control("press")
        time.sleep(1.5)
        d.control("release")
        d.wait_state("speaking", timeout=10)
        emu.inject("stall", seconds=120.0)
        stalled = time.monotonic()
        d.wait_state("idle", timeout=2 * ASKED_REPLY_QUIET_S + 5)
        took = time.monotonic() - stalled
        st = d.status()
        ended = emu.call(lambda e: [raw for _, raw in e.sent if b'"turnComplete"' in raw])
        assert d.stop()[0] == 0
    assert st["outcomes"] == {"completed": 1} and st["session"] == "ready"
    assert ended == [], "the server ended the reply after all"
    assert ASKED_REPLY_QUIET_S <= took <= 2 * ASKED_REPLY_QUIET_S + 5
    messages = [e.get("MESSAGE", "") for e in d.journal()]
    assert (f"the server did not end the reply; it ends after {ASKED_REPLY_QUIET_S:g} s "
            "without audio") in messages
    records = d.turn_records()
    assert [(r["PTTD_UNASKED"], r["PTTD_OUTCOME"]) for r in records] == [("no", "completed")]
