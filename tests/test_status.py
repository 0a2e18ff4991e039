"""`pttd status` and systemd's STATUS= line from one snapshot (daemon/status.py), and the turn
log the status counts turns in (daemon/turn_record.py)."""

from __future__ import annotations

import pytest

from daemon.status import Snapshot
from daemon.turn_record import TurnLog

UP = Snapshot(state="idle", session="ready", problems=("", ""))


def test_all_up_is_healthy_and_the_line_says_the_state() -> None:
    assert UP.healthy and UP.problem == ""
    assert UP.line() == "idle, session ready"


@pytest.mark.parametrize(("snap", "line"), [
    (Snapshot(state="offline", session="backoff"), "degraded: offline, session backoff"),
    (Snapshot(state="idle", session="ready", capture_online=False),
     "degraded: idle, session ready, microphone offline"),
    (Snapshot(state="idle", session="ready", playback_online=False),
     "degraded: idle, session ready, speaker offline"),
])
def test_a_missing_part_is_degraded_and_named(snap: Snapshot, line: str) -> None:
    assert not snap.healthy and snap.line() == line


def test_problems_a_user_should_fix_are_joined_into_the_line() -> None:
    snap = Snapshot(state="offline", session="failed",
                    problems=("button on GPIO17 unavailable", "[live] model x not found"))
    assert snap.problem == "button on GPIO17 unavailable; [live] model x not found"
    assert snap.line() == ("degraded: offline, session failed, button on GPIO17 unavailable; "
                           "[live] model x not found")
    # A problem alone does not make a working daemon degraded: the button's absence is named.
    assert Snapshot(state="idle", session="ready", problems=("no button", "")).line() == \
        "idle, session ready, no button"


def test_the_document_carries_every_field_under_its_contract_name() -> None:
    snap = Snapshot(state="speaking", session="ready", problems=("", ""), turns=3,
                    outcomes={"completed": 2, "failed": 1}, capture_device="hw:1",
                    capture_granted="hw:1 16000 Hz", overruns=1, samples=48000,
                    playback_device="default", playback_granted="pulse 24000 Hz",
                    underruns=2, playing=True, frames=40, wakeups=3, connections=2)
    assert snap.document() == {
        "ok": True, "state": "speaking", "session": "ready", "turn": 3,
        "outcomes": {"completed": 2, "failed": 1},
        "capture": {"online": True, "device": "hw:1", "granted": "hw:1 16000 Hz",
                    "overruns": 1, "samples": 48000},
        "playback": {"online": True, "device": "default", "granted": "pulse 24000 Hz",
                     "underruns": 2, "playing": True},
        "uplink": {"frames": 40, "task_wakeups": 3},
        "reconnects": 1, "problem": ""}
    assert Snapshot(state="offline", session="connecting").document()["reconnects"] == 0


def test_the_turn_log_counts_turns_and_outcomes_by_kind() -> None:
    turns = TurnLog()
    assert turns.end("completed", False, samples_sent=0, underruns=0, overruns=0) is None
    rec = turns.begin(10.0, 10.002, underruns=5, overruns=1)
    assert turns.record is rec and rec.turn == 1 and rec.activity_started_at == 10.002
    assert rec.fields()["PTTD_PRESS_TO_START_MS"] == "2"
    assert turns.end("failed: no reply", False, samples_sent=8000, underruns=7,
                     overruns=1) is rec
    assert turns.record is None and rec.kind == "failed"
    assert (rec.underruns, rec.overruns, rec.fields()["PTTD_AUDIO_SENT_S"]) == (2, 0, "0.50")
    turns.begin(20.0, 20.0, underruns=0, overruns=0)
    turns.end("interrupted", True, samples_sent=0, underruns=0, overruns=0)
    assert turns.total == 2 and turns.outcomes == {"failed": 1, "interrupted": 1}


def test_only_the_first_reply_audio_of_a_turn_is_its_first() -> None:
    rec = TurnLog().begin(0.0, 0.0, underruns=0, overruns=0)
    rec.released_at = 1.0
    assert rec.reply_audio(4800, 24000, now=1.25)
    assert not rec.reply_audio(4800, 24000, now=1.3)
    assert rec.first_audio_at == 1.25 and rec.reply_s == pytest.approx(0.2)
    assert rec.fields()["PTTD_RELEASE_TO_REPLY_MS"] == "250"


def test_a_reply_nobody_asked_for_is_a_turn_of_its_own_marked_unasked() -> None:
    turns = TurnLog()
    asked = turns.begin(1.0, 1.001, underruns=0, overruns=0)
    turns.end("completed", False, samples_sent=16000, underruns=0, overruns=0)
    assert asked.fields()["PTTD_UNASKED"] == "no"
    rec = turns.begin(None, 5.0, underruns=3, overruns=0)
    assert rec.reply_audio(48000, 24000, now=5.0)
    turns.end("completed", False, samples_sent=16000, underruns=3, overruns=0)
    f = rec.fields()
    assert (f["PTTD_TURN"], f["PTTD_UNASKED"], f["PTTD_OUTCOME"]) == ("2", "yes", "completed")
    # No press, no release, nothing sent (the sender's count is the last turn's): those
    # figures are empty or zero rather than the last turn's.
    assert f["PTTD_PRESS_TO_START_MS"] == f["PTTD_RELEASE_TO_REPLY_MS"] == ""
    assert f["PTTD_AUDIO_SENT_S"] == "0.00"
    assert f["PTTD_REPLY_S"] == "1.00"
    assert rec.summary().startswith("turn 2 (unasked) completed, ")
    assert turns.total == 2 and turns.outcomes == {"completed": 2}


def test_a_transcript_that_comes_before_an_unasked_replys_audio_is_its_own() -> None:
    turns = TurnLog()
    turns.notes.output_text.append("stray")
    asked = turns.begin(1.0, 1.0, underruns=0, overruns=0)
    assert turns.notes is asked and asked.output_text == []     # a press starts afresh
    turns.end("completed", False, samples_sent=0, underruns=0, overruns=0)
    turns.notes.output_text.append("The porch light is on.")
    unasked = turns.begin(None, 2.0, underruns=0, overruns=0)
    assert unasked.fields()["PTTD_OUTPUT_TEXT"] == "The porch light is on."
    turns.end("completed", False, samples_sent=0, underruns=0, overruns=0)
    assert turns.notes.output_text == []
