"""What the turn machine does with the server's reply: audio played only while a reply is
due, text sessions, and how each kind of turnComplete ends (or does not end) the turn."""

from __future__ import annotations

import pytest
from fixtures_turns import AUDIO, SPEAKS, ready, released

from daemon import turns as t
from daemon.turns import State, TurnMachine


def test_reply_audio_is_played_while_a_reply_is_due() -> None:
    """The machine decides and hands the very bytes received to the speaker: no copy."""
    m = released()
    acts = m.handle(AUDIO)
    assert acts == SPEAKS
    assert isinstance(acts[0], t.PlayAudio) and acts[0].data is AUDIO.data
    later = t.ReplyAudio(bytes(480), 16000)
    assert m.handle(later) == [t.PlayAudio(later.data, 16000)]
    assert m.handle(t.TurnComplete()) == [t.EndReply()]


def test_reply_audio_while_listening_or_in_a_text_session_is_dropped() -> None:
    """(Audio while idle is a reply nobody asked for: tests/test_turns_unasked.py.)"""
    m = ready()
    m.handle(t.Press())
    assert m.handle(AUDIO) == [t.Log("info", "model audio dropped: it came while the button "
                                             "is held")]
    assert m.handle(AUDIO) == [] and m.state is State.LISTENING
    m = TurnMachine(audio_replies=False)
    m.handle(t.SessionReady())
    assert m.handle(AUDIO) == [] and m.state is State.IDLE
    m.handle(t.SessionReady())
    m.handle(t.Press())
    m.handle(t.Release())
    assert m.handle(AUDIO) == [] and m.state is State.THINKING


def test_after_the_server_interrupts_its_reply_the_rest_of_it_is_dropped() -> None:
    m = released()
    m.handle(AUDIO)
    assert t.StopPlayback() in m.handle(t.Interrupted())
    assert m.handle(AUDIO) == [] and m.state is State.IDLE
    assert m.handle(t.TurnComplete()) == []


def test_text_sessions_complete_without_audio() -> None:
    m = ready(audio_replies=False)
    m.handle(t.Press())
    m.handle(t.Release())
    assert not m.accepts_audio
    m.handle(t.ReplyText())
    acts = m.handle(t.TurnComplete())
    assert t.TurnEnded("completed") in acts and m.state is State.IDLE


@pytest.mark.parametrize("event", [t.TurnComplete(waiting_for_input=True),
                                   t.TurnComplete(reason="NEED_MORE_INPUT"),
                                   t.TurnComplete(reason="NEED_MORE_INPUT",
                                                  waiting_for_input=True)])
def test_a_turn_the_model_ends_waiting_for_input_is_quiet(event: t.TurnComplete) -> None:
    m = released()
    acts = m.handle(event)
    assert t.TurnEnded("completed: the model is waiting for more input") in acts
    assert t.PlayEarcon("error") not in acts and t.SetLed("error") not in acts
    assert m.state is State.IDLE


@pytest.mark.parametrize("reason", ["RESPONSE_REJECTED", "PROHIBITED_INPUT_CONTENT",
                                    "MALFORMED_FUNCTION_CALL"])
def test_a_turn_ended_without_a_reply_for_another_reason_fails_and_says_why(reason: str) -> None:
    m = released()
    acts = m.handle(t.TurnComplete(reason=reason))
    assert t.PlayEarcon("error") in acts
    assert t.TurnEnded(f"failed: the server ended the turn without a reply ({reason})") in acts


def test_an_empty_turn_fails_unless_proactive_audio_lets_the_model_stay_silent() -> None:
    acts = released().handle(t.TurnComplete())
    assert t.PlayEarcon("error") in acts
    assert t.TurnEnded("failed: the server ended the turn without a reply") in acts
    m = ready(may_stay_silent=True)
    m.handle(t.Press())
    m.handle(t.Release())
    acts = m.handle(t.TurnComplete())
    assert t.PlayEarcon("error") not in acts
    assert t.TurnEnded("completed: the model chose not to answer (proactive audio)") in acts
    # A stated reason is still a failure, proactive or not.
    m.handle(t.Press())
    m.handle(t.Release())
    assert t.PlayEarcon("error") in m.handle(t.TurnComplete(reason="RESPONSE_REJECTED"))


def test_a_turn_answered_by_a_function_call_alone_completes_quietly() -> None:
    """NON_BLOCKING: the model calls, ends its turn, and speaks the result later, unasked."""
    m = released()
    assert m.handle(t.ToolCalled()) == []
    acts = m.handle(t.TurnComplete())
    assert acts == [t.CancelTimer(), t.TurnEnded("completed"), t.SetLed("idle")]
    # Its result, spoken later, is a reply nobody asked for.
    assert m.handle(AUDIO)[0] == t.UnaskedReply()


def test_a_turn_complete_whose_interaction_goes_on_ends_nothing() -> None:
    """interactionStatus IN_PROGRESS: more output may follow, as the SDK's receive() reads it."""
    m = released()
    assert m.handle(t.TurnComplete(ends_interaction=False)) == []
    assert m.state is State.THINKING and m.turn_open
    m.handle(AUDIO)
    assert m.handle(t.TurnComplete(ends_interaction=False)) == []
    assert m.state is State.SPEAKING
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    assert t.TurnEnded("completed") in m.handle(t.PlaybackDrained())
