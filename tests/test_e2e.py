"""`pttd run` end to end: a real child process, the emulator, real ALSA PCMs on a PulseAudio null
sink, the control socket, a test NOTIFY_SOCKET and a real journald."""

from __future__ import annotations

import base64
import json
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures_audio import counter_start
from fixtures_daemon import TEST_KEY, DaemonRig

from config import AudioConfig
from daemon.devkit.emulator import EmulatorOptions, EmulatorThread
from daemon.devkit.simsink import SimSink
from hw import capture


def turns_sent(frames: list[tuple[int, Any]]) -> list[np.ndarray]:
    """The audio of each activity the emulator received, in order."""
    turns: list[np.ndarray] = []
    current: list[bytes] | None = None
    for _, msg in frames:
        rt = msg.get("realtimeInput")
        if not isinstance(rt, dict):
            continue
        if "activityStart" in rt:
            current = []
        elif "activityEnd" in rt and current is not None:
            turns.append(np.frombuffer(b"".join(current), dtype="<i2"))
            current = None
        elif "audio" in rt and current is not None:
            current.append(base64.b64decode(rt["audio"]["data"]))
    return turns


def a_reply_playing(d: DaemonRig) -> None:
    """Once ready, a 1.5 s turn whose reply is now playing."""
    d.wait_ready()
    d.control("press")
    time.sleep(1.5)
    d.control("release")
    d.wait_state("speaking", timeout=10)


@pytest.fixture
def emu() -> Any:
    with EmulatorThread(EmulatorOptions(pace="realtime")) as e:
        yield e


def test_full_turn_lands_in_the_speaker_with_a_journal_record(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread) -> None:
    with DaemonRig(tmp_path, counter_sink, emu, journal=True,
                   config="[earcons]\nenabled = false\n") as d:
        d.wait_ready()
        time.sleep(0.6)  # let the ring fill beyond the pre-roll
        written_before = len(counter_sink.written())
        pressed = d.control("press")
        assert pressed["state"] == "listening"
        head_at_press = pressed["capture"]["samples"]
        time.sleep(1.0)
        released = d.control("release")
        assert released["state"] in ("thinking", "speaking")
        head_at_release = released["capture"]["samples"]
        d.wait(lambda: d.status().get("outcomes", {}).get("completed") == 1, 15, "a reply")
        st = d.status()
        rc, _ = d.stop()
    assert rc == 0, d.stderr
    sent = turns_sent(emu.frames)
    assert len(sent) == 1
    # The pre-roll plus the held audio, contiguous and in order: one unbroken counter run
    # that starts 300 ms before the press (the ring head at the press is up to a period old).
    period = AudioConfig().period_ms * 16
    first = counter_start(sent[0])
    assert first is not None
    preroll = (head_at_press - first) % 65536
    assert abs(preroll - 300 * 16) <= period
    assert 1.25 * 16000 <= len(sent[0]) <= 1.5 * 16000 + period
    # What was said up to the release went out, and no more: the turn ends where the ring head
    # was as the release was handled (the release's own read may already be in it) or at most
    # one capture read beyond it.
    beyond = (first + len(sent[0]) - head_at_release) % 65536
    assert 0 <= beyond <= capture.PERIOD_MS * 16
    assert st["stats"]["tail_to_activity_end_ms"]["n"] == 1
    # The echoed reply (the user's audio at 24 kHz) was written to the playback device.
    reply = len(counter_sink.written()) - written_before
    assert reply >= len(sent[0]) * 3 // 2 * 2 * 0.95
    # One figure per period streamed while held (about a second).
    assert st["stats"]["capture_to_send_ms"]["n"] >= 1000 // AudioConfig().period_ms - 1
    # The press and each period went out from the callback that announced them: the sender
    # task woke only for the release, and no frame had to wait for the socket.
    assert st["uplink"]["frames"] >= 1000 // AudioConfig().period_ms
    assert st["uplink"]["task_wakeups"] == 1
    # Start-up's objects were frozen once ready, so no later pass walks them again.
    assert st["gc"]["enabled"] is True
    assert st["gc"]["frozen"] > 10_000
    records = d.turn_records()
    assert len(records) == 1
    rec = records[0]
    assert rec["PTTD_TURN"] == "1"
    assert rec["PTTD_OUTCOME"] == "completed"
    assert rec["PTTD_INTERRUPTED"] == "no"
    assert float(rec["PTTD_AUDIO_SENT_S"]) == pytest.approx(len(sent[0]) / 16000, abs=0.01)
    assert float(rec["PTTD_REPLY_S"]) > 1.0
    assert int(rec["PTTD_RELEASE_TO_REPLY_MS"]) >= 0
    for field in ("PTTD_PRESS_TO_START_MS", "PTTD_UNDERRUNS", "PTTD_OVERRUNS",
                  "PTTD_INPUT_TEXT", "PTTD_OUTPUT_TEXT"):
        assert field in rec
    # The token counts are the server's, from the usageMetadata sent with its turnComplete.
    usage = [json.loads(raw)["usageMetadata"] for _, raw in emu.call(lambda e: list(e.sent))
             if b'"usageMetadata"' in raw]
    assert len(usage) == 1
    assert rec["PTTD_PROMPT_TOKENS"] == str(usage[0]["promptTokenCount"])
    assert rec["PTTD_RESPONSE_TOKENS"] == str(usage[0]["responseTokenCount"])
    assert rec["PTTD_TOTAL_TOKENS"] == str(usage[0]["totalTokenCount"])
    assert rec["PTTD_WAITING_FOR_INPUT"] == "no"
    text = "\n".join(str(v) for e in d.journal() for v in e.values()) + d.stderr
    assert TEST_KEY not in text


def test_barge_in_stops_the_reply_and_starts_a_new_turn(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread) -> None:
    with DaemonRig(tmp_path, counter_sink, emu) as d:
        a_reply_playing(d)
        time.sleep(0.3)
        st = d.control("press")
        assert st["state"] == "listening"
        assert st["outcomes"].get("interrupted") == 1
        d.wait(lambda: not d.status()["playback"]["playing"], 2, "playback to stop")
        time.sleep(0.5)
        d.control("release")
        d.wait(lambda: d.status()["outcomes"].get("completed") == 1, 15, "the second reply")
        assert d.stop()[0] == 0
    starts = [m for _, m in emu.frames if "activityStart" in m.get("realtimeInput", {})]
    assert len(starts) == 2
    history = emu.sessions[0].history
    assert any(h.get("interrupted") for h in history)


def test_barge_in_after_the_whole_reply_arrived_plays_the_next_reply(
        tmp_path: Path, counter_sink: SimSink) -> None:
    """As with the real service, the reply and its turnComplete are in long before the reply
    has played: a press during playback owes the server nothing."""
    with EmulatorThread(EmulatorOptions(pace="burst")) as emu, \
            DaemonRig(tmp_path, counter_sink, emu) as d:
        a_reply_playing(d)
        d.wait(lambda: emu.call(lambda e: e.replies) == 1 and any(
            h.get("role") == "model" for h in emu.call(lambda e: list(e.sessions[0].history))),
            5, "the server to finish the reply")
        # "speaking" comes with the first chunk; the device starts a few ms later, once the
        # playback thread wrote the start-up wait's worth of audio.
        d.wait(lambda: d.status()["playback"]["playing"], 1, "the reply to reach the device")
        assert d.control("press")["outcomes"].get("interrupted") == 1
        time.sleep(0.5)
        before = len(counter_sink.written())
        d.control("release")
        d.wait(lambda: d.status()["outcomes"].get("completed") == 1, 10, "the second reply")
        assert d.stop()[0] == 0
    assert len(counter_sink.written()) - before >= 0.5 * 24000 * 2


def test_barge_in_when_the_server_never_ends_the_old_reply_plays_the_next_one(
        tmp_path: Path, counter_sink: SimSink) -> None:
    """Some preview models send neither `interrupted` nor the old reply's turnComplete after a
    barge-in: the next reply must still be heard, not dropped as the old one's."""
    with EmulatorThread(EmulatorOptions(pace="realtime", barge_in_end="silent")) as emu, \
            DaemonRig(tmp_path, counter_sink, emu) as d:
        a_reply_playing(d)
        time.sleep(0.3)
        assert d.control("press")["outcomes"].get("interrupted") == 1
        time.sleep(0.5)
        before = len(counter_sink.written())
        d.control("release")
        d.wait(lambda: d.status()["outcomes"].get("completed") == 1, 15, "the second reply")
        assert d.stop()[0] == 0
        sent = emu.call(lambda e: [json.loads(raw) for _, raw in e.sent])
    assert not any(m.get("serverContent", {}).get("interrupted") for m in sent)
    assert len(counter_sink.written()) - before >= 0.5 * 24000 * 2


def test_a_turn_the_model_ends_waiting_for_input_is_quiet(
        tmp_path: Path, counter_sink: SimSink) -> None:
    with EmulatorThread(EmulatorOptions(pace="burst", need_more_input_below_ms=60_000)) as emu, \
            DaemonRig(tmp_path, counter_sink, emu, journal=True) as d:
        d.wait_ready()
        d.control("press")
        time.sleep(0.5)
        d.control("release")
        d.wait(lambda: sum(d.status().get("outcomes", {}).values()) == 1, 15, "the turn to end")
        st = d.status()
        assert d.stop()[0] == 0
        records = d.turn_records()
        journal = d.journal()
    assert st["outcomes"] == {"completed": 1} and st["state"] == "idle"
    assert len(records) == 1
    rec = records[0]
    assert rec["PTTD_OUTCOME"] == "completed: the model is waiting for more input"
    assert rec["PTTD_WAITING_FOR_INPUT"] == "yes"
    assert rec["PTTD_TURN_COMPLETE_REASON"] == "NEED_MORE_INPUT"
    assert rec["PTTD_PROMPT_TOKENS"] != "" and rec["PTTD_RESPONSE_TOKENS"] == "0"
    assert not any("turn failed" in e.get("MESSAGE", "") for e in journal)


def test_server_close_mid_reply_then_next_turn_works(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread) -> None:
    with DaemonRig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        emu.inject("close", code=1011, reason="Internal error occurred.", mid_reply=True)
        d.control("press")
        time.sleep(1.0)
        d.control("release")
        d.wait(lambda: sum(d.status().get("outcomes", {}).values()) == 1, 15, "turn 1 to end")
        d.wait_state("idle", timeout=15)
        assert d.status()["reconnects"] >= 1
        d.control("press")
        time.sleep(1.0)
        d.control("release")
        d.wait(lambda: d.status()["outcomes"].get("completed", 0) >= 1
               and sum(d.status()["outcomes"].values()) == 2, 15, "turn 2 to complete")
        assert d.stop()[0] == 0
    assert len(emu.sessions) >= 2
    assert emu.sessions[-1].resumed_from is not None


def test_sigterm_exits_0_within_2_s_and_notify_datagrams(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread) -> None:
    with DaemonRig(tmp_path, counter_sink, emu, env={"WATCHDOG_USEC": "400000"}) as d:
        d.wait_ready()
        d.control("press")
        time.sleep(0.3)
        d.control("release")
        time.sleep(0.5)
        rc, took = d.stop(signal.SIGTERM)
        time.sleep(0.2)
    assert rc == 0, d.stderr
    assert took < 2.0
    messages = [m for _, m in d.notifications]
    ready = [m for m in messages if "READY=1" in m]
    assert len(ready) == 1 and "STATUS=idle, session ready" in ready[0]
    statuses = [m for m in messages if m.startswith("STATUS=")]
    assert any("listening" in m for m in statuses) and any("thinking" in m or "speaking" in m
                                                           for m in statuses)
    assert messages.count("WATCHDOG=1") >= 2
    assert any(m.startswith("STOPPING=1") for m in messages)
    assert messages.index(next(m for m in messages if m.startswith("STOPPING=1"))) > \
        messages.index(ready[0])


def test_server_absent_at_start_reports_degraded_then_recovers(
        tmp_path: Path, counter_sink: SimSink) -> None:
    import socket as socketlib

    with socketlib.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rig = DaemonRig(tmp_path, counter_sink, None, endpoint=f"ws://127.0.0.1:{port}")
    with rig as d:
        d.wait_state("offline", timeout=10)
        pressed = d.control("press")
        assert pressed["ok"] and pressed["state"] == "offline"
        with EmulatorThread(EmulatorOptions(port=port)) as emu:
            d.wait_state("idle", timeout=15)
            d.control("press")
            time.sleep(0.5)
            d.control("release")
            d.wait(lambda: d.status()["outcomes"].get("completed") == 1, 15, "a reply")
            assert d.stop()[0] == 0
    assert len(turns_sent(emu.frames)) == 1


def test_sighup_applies_what_it_can_and_names_what_needs_a_restart(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread) -> None:
    with DaemonRig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        text = d.config_path.read_text()
        d.config_path.write_text(text.replace("[audio]\n", "[audio]\nvolume = 0.5\n")
                                 .replace(f'capture_device = "{counter_sink.capture_device}"',
                                          'capture_device = "plughw:9"'))
        d.proc.send_signal(signal.SIGHUP)
        d.wait(lambda: "config reloaded" in d.stderr, 5, "the reload")
        d.wait(lambda: "need `systemctl restart pttd`" in d.stderr, 5, "the restart note")
        assert "[audio] capture_device" in d.stderr and "[audio] volume" not in d.stderr
        # A broken file is refused and the running config is kept.
        d.config_path.write_text("[audio]\nperiod_ms = 7\n")
        d.proc.send_signal(signal.SIGHUP)
        d.wait(lambda: "reload refused" in d.stderr, 5, "the refusal")
        assert "period_ms = 7: must be one of 10, 20, 40, 50, 100, 200" in d.stderr
        assert d.status()["state"] == "idle"
        assert d.stop()[0] == 0


@pytest.mark.parametrize("tail_ms", [0, 250])
def test_uplink_ends_at_the_release_plus_the_tail_within_one_read(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread, tail_ms: int) -> None:
    rig = DaemonRig(tmp_path, counter_sink, emu, config="[earcons]\nenabled = false\n")
    path = rig.config_path
    path.write_text(path.read_text().replace("[audio]\n", f"[audio]\ntail_ms = {tail_ms}\n"))
    with rig as d:
        d.wait_ready()
        time.sleep(0.6)
        d.control("press")
        time.sleep(1.0)
        # The ring head as the release is handled: at most one read older than the release.
        head_at_release = d.control("release")["capture"]["samples"]
        d.wait(lambda: d.status().get("outcomes", {}).get("completed") == 1, 15, "a reply")
        rc, _ = d.stop()
    assert rc == 0, d.stderr
    sent = turns_sent(emu.frames)
    assert len(sent) == 1
    first = counter_start(sent[0])
    assert first is not None, "the turn's audio is one unbroken counter run"
    end = first + len(sent[0])
    one_read = capture.PERIOD_MS * 16
    beyond = (end - head_at_release) % 65536
    print(f"tail {tail_ms} ms: the uplink ended {beyond / 16:.1f} ms past the head at release")
    assert tail_ms * 16 <= beyond <= tail_ms * 16 + one_read
