"""Barge-in: a press into a reply stops it, and however (and whether) the server ends the old
reply, its late audio and ends are dropped while the new turn's reply plays."""

from __future__ import annotations

from fixtures_turns import (
    AUDIO,
    SPEAKS,
    assert_stops_playback_right_after_activity_start,
    ready,
)

from daemon import turns as t
from daemon.turns import State, TurnMachine


def barged_in() -> TurnMachine:
    """A machine whose user has just barged into a reply the server has not ended yet."""
    m = ready()
    m.handle(t.Press())
    m.handle(t.Release())
    m.handle(AUDIO)
    acts = m.handle(t.Press())
    assert_stops_playback_right_after_activity_start(acts)
    assert t.TurnEnded("interrupted", True) in acts
    assert m.state is State.LISTENING and not m.accepts_audio
    return m


def assert_the_new_reply_plays_and_completes(m: TurnMachine) -> None:
    assert m.accepts_audio
    assert m.handle(AUDIO) == SPEAKS
    assert m.state is State.SPEAKING
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    assert t.TurnEnded("completed") in m.handle(t.PlaybackDrained())
    assert m.state is State.IDLE and m.stale_replies == 0 and m.late_ends == 0


def test_after_a_barge_in_the_old_reply_is_dropped_until_it_ends() -> None:
    m = barged_in()
    assert m.handle(AUDIO) == []               # the old reply's, arriving after the press
    assert m.handle(t.Interrupted()) == []
    assert m.handle(AUDIO) == []
    assert m.handle(t.TurnComplete()) == [] and m.stale_replies == 0
    m.handle(t.Release())
    assert_the_new_reply_plays_and_completes(m)


def test_after_a_barge_in_the_new_activity_end_lets_the_new_reply_play() -> None:
    """The server never ended the old reply: from the new activityEnd on, audio is the new
    reply's and plays."""
    m = barged_in()
    assert m.handle(AUDIO) == []
    assert t.StopStreaming() in m.handle(t.Release())
    assert_the_new_reply_plays_and_completes(m)


def test_barge_in_the_server_ends_the_old_reply_before_the_release() -> None:
    m = barged_in()
    # The old reply's end belongs to the interrupted turn.
    assert m.handle(t.Interrupted()) == []
    assert m.handle(t.TurnComplete()) == []
    assert m.stale_replies == 0
    acts = m.handle(t.Release())
    assert not any(isinstance(a, t.Log) for a in acts)
    assert_the_new_reply_plays_and_completes(m)


def test_barge_in_the_server_never_ends_the_old_reply_no_wedge() -> None:
    """Preview models that send neither `interrupted` nor the old turnComplete: the new turn's
    activityEnd ends the old reply's claim, and the new reply plays."""
    m = barged_in()
    acts = m.handle(t.Release())
    assert t.StopStreaming() in acts
    assert any(isinstance(a, t.Log) and "new reply" in a.message for a in acts)
    assert m.stale_replies == 0
    assert_the_new_reply_plays_and_completes(m)


def test_barge_in_the_old_reply_ends_late_before_anything_of_the_new_one() -> None:
    """The server sends in order, so an end that crosses the activityEnd and arrives before any
    of the new reply is the old reply's: it neither fails nor ends the new turn."""
    m = barged_in()
    m.handle(t.Release())
    assert m.accepts_audio
    assert m.handle(t.Interrupted()) == []
    assert m.handle(t.TurnComplete()) == []
    assert m.state is State.THINKING and m.turn_open
    assert_the_new_reply_plays_and_completes(m)


def test_barge_in_interrupted_without_the_old_turn_complete() -> None:
    m = barged_in()
    assert m.handle(t.Interrupted()) == []
    m.handle(t.Release())
    assert_the_new_reply_plays_and_completes(m)


def test_after_the_new_reply_began_a_turn_complete_is_the_new_reply_s() -> None:
    m = barged_in()
    m.handle(t.Release())
    m.handle(AUDIO)
    assert m.late_ends == 0
    assert m.handle(t.TurnComplete()) == [t.EndReply()]


def test_a_late_old_end_does_not_swallow_a_new_turn_that_waits_for_input() -> None:
    m = barged_in()
    m.handle(t.Release())
    acts = m.handle(t.TurnComplete(waiting_for_input=True))
    assert t.TurnEnded("completed: the model is waiting for more input") in acts
    assert t.PlayEarcon("error") not in acts and m.state is State.IDLE


def test_a_second_barge_in_before_the_first_new_reply_began() -> None:
    m = barged_in()
    m.handle(t.Release())
    acts = m.handle(t.Press())                 # into the new turn, still THINKING
    assert t.TurnEnded("interrupted", True) in acts and m.stale_replies == 1
    m.handle(t.Release())
    assert m.late_ends == 2
    assert m.handle(t.TurnComplete()) == [] and m.handle(t.TurnComplete()) == []
    assert_the_new_reply_plays_and_completes(m)


def test_barge_in_after_the_server_finished_owes_nothing() -> None:
    """Replies arrive faster than they play: the server's turnComplete is usually in before the
    user barges into the tail of the playback. The next reply must then play, not be dropped
    as the old one's."""
    m = ready()
    m.handle(t.Press())
    m.handle(t.Release())
    m.handle(AUDIO)
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    acts = m.handle(t.Press())
    assert_stops_playback_right_after_activity_start(acts)
    assert t.TurnEnded("interrupted", True) in acts
    m.handle(t.Release())
    assert m.accepts_audio
    m.handle(AUDIO)
    assert m.state is State.SPEAKING
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    assert t.TurnEnded("completed") in m.handle(t.PlaybackDrained())
