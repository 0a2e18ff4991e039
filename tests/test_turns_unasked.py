"""Replies nobody asked for: model audio that arrives while idle (the spoken result of a
function the model ran in the background, or proactive audio) plays like any reply, a press
barges into it, and it ends on the server's turnComplete or, if that never comes, on quiet."""

from __future__ import annotations

from fixtures_turns import (
    AUDIO,
    PLAY,
    SPEAKS,
    assert_stops_playback_right_after_activity_start,
    ready,
)
from fixtures_turns import released as asked

from daemon import turns as t
from daemon.turns import ASKED_REPLY_QUIET_S, REPLY_QUIET_S, State, TurnMachine

BEGINS = [t.UnaskedReply(), PLAY, t.SetLed("speaking"), t.WatchQuiet(REPLY_QUIET_S)]
GAVE_UP = t.Log("info", f"the server did not end the reply; it ends after {REPLY_QUIET_S:g} s "
                        "without audio")
ENDED = [t.CancelTimer(), t.TurnEnded("completed"), t.SetLed("idle")]
DROPPED = t.Log("info", "model audio dropped: it came while the button is held")


def unasked() -> TurnMachine:
    m = ready()
    assert m.handle(AUDIO) == BEGINS
    return m


def test_audio_while_idle_opens_a_reply_that_plays_and_shows_as_speaking() -> None:
    m = unasked()
    assert m.state is State.SPEAKING and m.turn_open and m.reply_pending
    # The rest of it just plays: the watch is armed once, not per chunk.
    assert m.handle(AUDIO) == [PLAY]
    assert m.handle(AUDIO) == [PLAY]


def test_it_ends_on_the_servers_turn_complete_and_the_playback_draining() -> None:
    m = unasked()
    assert m.handle(t.TurnComplete(ends_interaction=False)) == []   # more output may follow
    assert m.handle(AUDIO) == [PLAY]
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    assert m.state is State.SPEAKING
    # The watch finds the server has ended it: nothing more to do until the drain.
    assert m.handle(t.Timeout("quiet")) == []
    assert m.handle(t.PlaybackDrained()) == ENDED
    assert m.state is State.IDLE and not m.turn_open


def test_a_turn_complete_waiting_for_input_ends_it_too() -> None:
    m = unasked()
    assert m.handle(t.TurnComplete(waiting_for_input=True)) == [t.EndReply()]
    assert m.handle(t.PlaybackDrained()) == ENDED


def gives_up_on_quiet_and_the_late_end_is_its_own(m: TurnMachine, quiet_s: float) -> None:
    """Audio came since the watch was armed: it looks again later. Quiet since: what came plays
    out, then the turn ends, and the server's end, if it comes late, is that reply's: the next
    turn is not cut short."""
    assert m.handle(t.Timeout("quiet")) == [t.WatchQuiet(quiet_s)]
    gave_up = t.Log("info", f"the server did not end the reply; it ends after {quiet_s:g} s "
                            "without audio")
    assert m.handle(t.Timeout("quiet")) == [gave_up, t.EndReply()]
    assert m.state is State.SPEAKING and not m.reply_pending
    assert m.handle(t.Timeout("quiet")) == []
    assert m.handle(t.PlaybackDrained()) == ENDED
    assert m.handle(t.TurnComplete()) == []
    m.handle(t.Press())
    m.handle(t.Release())
    assert m.handle(AUDIO) == SPEAKS
    assert m.handle(t.TurnComplete()) == [t.EndReply()]


def test_a_server_that_never_ends_it_cannot_wedge_the_speaker() -> None:
    m = unasked()
    m.handle(AUDIO)
    gives_up_on_quiet_and_the_late_end_is_its_own(m, REPLY_QUIET_S)


def test_a_late_end_that_comes_during_the_next_turn_is_still_the_unasked_replys() -> None:
    m = unasked()
    m.handle(t.Timeout("quiet"))
    m.handle(t.PlaybackDrained())
    m.handle(t.Press())
    m.handle(t.Release())
    assert m.handle(t.TurnComplete()) == []
    assert m.state is State.THINKING
    assert m.handle(AUDIO) == SPEAKS


def test_a_late_end_while_it_still_plays_out_is_its_own_and_owes_nothing_after() -> None:
    m = unasked()
    m.handle(t.Timeout("quiet"))
    assert m.handle(t.TurnComplete(waiting_for_input=True)) == []
    assert m.handle(t.PlaybackDrained()) == ENDED
    # That end was taken: the next turn's empty end is its own, and fails as ever.
    m.handle(t.Press())
    m.handle(t.Release())
    assert t.PlayEarcon("error") in m.handle(t.TurnComplete())


def test_audio_after_giving_up_while_it_still_plays_goes_on_and_is_watched_again() -> None:
    m = unasked()
    assert m.handle(t.Timeout("quiet")) == [GAVE_UP, t.EndReply()]
    assert m.handle(AUDIO) == [PLAY, t.WatchQuiet(REPLY_QUIET_S)]
    assert m.reply_pending and m.turn_open
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    assert m.handle(t.PlaybackDrained()) == ENDED


def test_audio_after_an_asked_reply_ended_while_it_plays_out_is_heard_and_watched() -> None:
    """The model speaks a background function's result right after its reply: one record."""
    m = asked()
    m.handle(AUDIO)
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    assert m.handle(AUDIO) == [PLAY, t.WatchQuiet(REPLY_QUIET_S)]
    assert m.reply_pending
    assert m.handle(t.Timeout("quiet")) == [GAVE_UP, t.EndReply()]
    assert t.TurnEnded("completed") in m.handle(t.PlaybackDrained())


def test_a_press_barges_in_as_into_any_reply() -> None:
    m = unasked()
    acts = m.handle(t.Press())
    assert_stops_playback_right_after_activity_start(acts)
    assert t.TurnEnded("interrupted", True) in acts and m.state is State.LISTENING
    # Its rest is stale (dropped unheard, not a reply of its own) until the server ends it.
    assert m.handle(AUDIO) == []
    assert m.handle(t.TurnComplete()) == []
    m.handle(t.Release())
    assert m.handle(AUDIO) == SPEAKS
    assert m.handle(t.TurnComplete()) == [t.EndReply()]


def test_a_press_after_its_end_while_it_plays_out_owes_nothing() -> None:
    m = unasked()
    m.handle(t.TurnComplete())
    m.handle(t.Press())
    assert m.stale_replies == 0
    assert m.handle(AUDIO) == [DROPPED]


def test_a_reply_begun_while_listening_is_dropped_and_its_end_is_not_the_new_turns() -> None:
    m = ready()
    m.handle(t.Press())
    assert m.handle(AUDIO) == [DROPPED]
    assert m.handle(AUDIO) == []                       # logged once
    m.handle(t.Release())
    # Its end, arriving after the release, does not end the user's turn without a reply.
    assert m.handle(t.TurnComplete()) == []
    assert m.state is State.THINKING
    assert m.handle(AUDIO) == SPEAKS


def test_once_the_dropped_reply_has_ended_the_next_ones_audio_is_dropped_and_logged_too() -> None:
    m = ready()
    m.handle(t.Press())
    m.handle(AUDIO)
    assert m.handle(t.TurnComplete()) == []            # the dropped reply's end, while held
    assert m.handle(AUDIO) == [DROPPED]
    assert m.handle(t.Interrupted()) == []
    assert m.handle(t.TurnComplete()) == []
    m.handle(t.Release())
    # Nothing more is owed: the new turn's own empty end fails as ever.
    assert t.PlayEarcon("error") in m.handle(t.TurnComplete(reason="RESPONSE_REJECTED"))


def test_the_server_interrupting_it_stops_it_and_its_rest_stays_stale() -> None:
    m = unasked()
    acts = m.handle(t.Interrupted())
    assert t.StopPlayback() in acts and t.TurnEnded("interrupted", True) in acts
    assert m.state is State.IDLE
    assert m.handle(AUDIO) == []                   # the interrupted reply's: not a new one
    assert m.handle(t.TurnComplete()) == []
    assert m.handle(AUDIO) == BEGINS               # after its end, a new one


def test_a_stale_reply_of_a_barge_in_is_not_taken_for_a_new_one() -> None:
    m = asked()
    m.handle(AUDIO)
    m.handle(t.Press())
    m.handle(t.Interrupted())
    assert m.handle(AUDIO) == [] and m.state is State.LISTENING


def test_the_session_lost_during_it_ends_it_with_what_arrived() -> None:
    m = unasked()
    acts = m.handle(t.SessionLost())
    assert acts[:2] == [t.EndReply(), t.CancelTimer()] and t.TurnEnded("completed") in acts
    assert m.state is State.OFFLINE


def test_audio_while_offline_is_dropped() -> None:
    m = ready()
    m.handle(t.SessionLost("reconnecting"))
    assert m.handle(AUDIO) == [] and not m.turn_open
    m = ready()
    m.handle(t.DeviceStatus("microphone", False))
    assert m.handle(AUDIO) == [] and m.state is State.OFFLINE


def test_a_stray_quiet_timeout_does_nothing() -> None:
    m = ready()
    assert m.handle(t.Timeout("quiet")) == []
    m = asked()
    m.handle(AUDIO)
    m.handle(t.TurnComplete())
    assert m.handle(t.Timeout("quiet")) == []      # the server ended it: nothing to give up
    assert m.handle(t.Timeout("quiet")) == [] and m.state is State.SPEAKING


def test_an_asked_reply_whose_server_stalls_ends_once_quiet_and_played() -> None:
    """The server owes the end of a reply the user asked for; one that stalls for good after
    some audio cannot keep the speaker "speaking" until the next press."""
    m = asked()
    assert m.handle(AUDIO) == SPEAKS
    assert m.reply_chunk_plays()                   # the reply's next chunk
    gives_up_on_quiet_and_the_late_end_is_its_own(m, ASKED_REPLY_QUIET_S)
