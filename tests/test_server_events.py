"""What a Live server event means for the turn: the turn machine's event and the turn record's
notes, as the app hands them on (daemon/server_events.py)."""

from __future__ import annotations

import pytest

from daemon import turns
from daemon.live import events as live
from daemon.server_events import turn_event
from daemon.turn_record import TurnRecord


def record() -> TurnRecord:
    return TurnRecord(1, pressed_at=0.0)


def test_reply_audio_becomes_the_machine_s_event_with_the_same_bytes() -> None:
    chunk = live.AudioChunk(bytes(960), 24000)
    event = turn_event(chunk, record())
    assert event == turns.ReplyAudio(chunk.data, 24000)
    assert isinstance(event, turns.ReplyAudio) and event.data is chunk.data


def test_transcripts_go_to_the_record_only() -> None:
    rec = record()
    assert turn_event(live.InputTranscription("what time"), rec) is None
    assert turn_event(live.InputTranscription(" is it"), rec) is None
    assert turn_event(live.OutputTranscription("noon"), rec) is None
    assert rec.fields()["PTTD_INPUT_TEXT"] == "what time is it"
    assert rec.fields()["PTTD_OUTPUT_TEXT"] == "noon"


def test_reply_text_is_a_reply_and_thoughts_are_not() -> None:
    rec = record()
    assert turn_event(live.TextPart("planning", thought=True), rec) is None
    assert turn_event(live.TextPart("It is noon."), rec) == turns.ReplyText()
    assert rec.output_text == ["It is noon."]


def test_turn_complete_notes_why_the_interaction_ended() -> None:
    rec = record()
    done = live.TurnComplete(reason="NEED_MORE_INPUT", waiting_for_input=True)
    assert turn_event(done, rec) == turns.TurnComplete("NEED_MORE_INPUT", True, True)
    assert rec.end_reason == "NEED_MORE_INPUT" and rec.waiting_for_input


def test_a_turn_complete_while_the_interaction_goes_on_leaves_the_record_alone() -> None:
    rec = record()
    going_on = live.TurnComplete(reason="X", interaction_status="IN_PROGRESS")
    assert turn_event(going_on, rec) == turns.TurnComplete("X", False, False)
    assert rec.end_reason == "" and not rec.waiting_for_input


def test_usage_goes_to_the_record() -> None:
    rec = record()
    usage = live.UsageMetadata(prompt_tokens=10, response_tokens=5, total_tokens=15)
    assert turn_event(usage, rec) is None
    assert rec.fields()["PTTD_TOTAL_TOKENS"] == "15"


@pytest.mark.parametrize(("event", "expected"), [
    (live.InputTranscription("x"), None), (live.OutputTranscription("x"), None),
    (live.UsageMetadata(), None), (live.TextPart("x"), turns.ReplyText()),
    (live.TurnComplete(), turns.TurnComplete())])
def test_between_turns_nothing_is_noted_and_the_machine_still_hears(
        event: live.Event, expected: turns.Event | None) -> None:
    """No record is open (a stale reply's tail, a server talking on its own): the machine
    still gets its event, to decide about."""
    assert turn_event(event, None) == expected


@pytest.mark.parametrize(("event", "expected"), [
    (live.Interrupted(), turns.Interrupted()),
    (live.GenerationComplete(), None),  # the turn ends on turnComplete, not before
    (live.SetupComplete(), None),
    (live.GoAway(1.0), None),
])
def test_session_events_are_the_machine_s_or_none(event: live.Event,
                                                    expected: turns.Event | None) -> None:
    assert turn_event(event, record()) == expected


def test_a_function_call_answers_the_turn_and_its_cancellation_means_nothing_to_it() -> None:
    call = live.ToolCall((live.FunctionCall("call-1", "porch_light", {}),))
    assert turn_event(call, None) == turns.ToolCalled()
    assert turn_event(live.ToolCallCancellation(("call-1",)), None) is None
