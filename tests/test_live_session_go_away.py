"""Session's goAway switch-over: a standby opened and taken over at a pause, never mid-turn,
and opened again when what it missed changed."""

from __future__ import annotations

from fixtures_live_session import asked_for_standby, msg, one_turn, ready, with_fresh_handle

from config import ContextTurn
from daemon.live import protocol as p
from daemon.live.failures import ClosedEarly
from daemon.live.session import GO_AWAY_DEFAULT_S, Step


def test_go_away_while_quiet_with_a_fresh_handle_opens_a_standby_at_once() -> None:
    s = with_fresh_handle(ready())
    s.on_event(p.GoAway(50.0), 10.0)
    assert s.poll(10.0) is Step.OPEN_STANDBY
    assert s.standby_handle() == "h1"
    assert s.poll(10.0) is Step.NOTHING        # one standby at a time


def test_a_ready_standby_is_taken_over_at_once_when_quiet() -> None:
    s = asked_for_standby()
    s.standby_opened()
    assert s.poll(11.0) is Step.SWITCH
    assert s.switched(11.0) == []
    assert s.poll(12.0) is Step.NOTHING


def test_go_away_while_the_user_speaks_waits_for_the_turn_and_its_handle() -> None:
    s = with_fresh_handle(ready())
    s.activity_start()
    s.on_event(p.GoAway(50.0), 10.0)
    assert s.poll(10.0) is Step.NOTHING
    s.activity_end()
    s.on_event(p.TurnComplete(), 12.0)
    assert s.poll(12.0) is Step.NOTHING        # the handle does not hold that turn yet
    s.on_event(p.SessionResumptionUpdate("h2", True), 12.5)
    assert s.poll(12.5) is Step.OPEN_STANDBY
    assert s.standby_handle() == "h2"


def test_go_away_opens_a_standby_anyway_when_time_runs_short() -> None:
    s = with_fresh_handle(ready())
    s.activity_start()
    s.on_event(p.GoAway(50.0), 10.0)
    latest = s.wake_at(10.0)
    assert latest == 60.0 - 10.0               # the setup timeout before the deadline
    assert s.poll(latest - 0.1) is Step.NOTHING
    assert s.poll(latest) is Step.OPEN_STANDBY


def test_go_away_with_little_time_left_opens_the_standby_halfway() -> None:
    s = with_fresh_handle(ready())
    s.activity_start()
    s.on_event(p.GoAway(4.0), 10.0)
    assert s.wake_at(10.0) == 12.0


def test_go_away_without_a_time_assumes_the_default() -> None:
    s = with_fresh_handle(ready())
    s.activity_start()
    s.on_event(p.GoAway(None), 10.0)
    assert s.wake_at(10.0) == 10.0 + GO_AWAY_DEFAULT_S - 10.0


def test_a_later_go_away_does_not_postpone_the_nearer_deadline() -> None:
    s = with_fresh_handle(ready())
    s.activity_start()
    s.on_event(p.GoAway(20.0), 10.0)
    s.on_event(p.GoAway(50.0), 11.0)
    assert s.wake_at(11.0) == 20.0


def test_a_ready_standby_waits_for_the_reply_to_finish() -> None:
    s = asked_for_standby()
    s.standby_opened()
    s.on_event(p.AudioChunk(b"\0\0", 24000), 11.0)    # the model speaks up on its own
    assert s.poll(11.0) is Step.NOTHING
    s.on_event(p.TurnComplete(), 12.0)
    assert s.poll(12.0) is Step.SWITCH


def test_a_standby_that_missed_a_turn_is_discarded_and_opened_again() -> None:
    s = asked_for_standby()
    one_turn(s, 11.0)
    s.standby_opened()
    assert s.poll(12.0) is Step.DISCARD_STANDBY
    s.on_event(p.SessionResumptionUpdate("h2", True), 12.5)
    assert s.poll(12.5) is Step.OPEN_STANDBY
    assert s.standby_handle() == "h2"


def test_a_standby_refusing_the_handle_is_opened_again_fresh() -> None:
    s = asked_for_standby()
    line = s.standby_failed(ClosedEarly(1008, "Session not found"))
    assert "fresh" in line
    assert s.poll(10.5) is Step.OPEN_STANDBY
    assert s.standby_handle() is None


def test_a_fresh_standby_gets_the_context() -> None:
    s = asked_for_standby(context=(ContextTurn("user", "I am Sam."),))
    s.standby_failed(ClosedEarly(1007, "Request contains an invalid argument."))
    s.poll(10.5)
    s.standby_opened()
    assert s.poll(11.0) is Step.SWITCH
    [frame] = s.switched(11.0)
    assert "clientContent" in msg(frame)


def test_a_standby_that_cannot_open_keeps_the_current_session() -> None:
    s = asked_for_standby()
    line = s.standby_failed(OSError(101, "Network is unreachable"))
    assert "keeping the current one" in line
    assert s.poll(59.0) is Step.NOTHING and s.wake_at(59.0) is None


def test_nothing_is_replaced_while_offline() -> None:
    s = with_fresh_handle(ready())
    s.on_event(p.GoAway(50.0), 10.0)
    s.lost(11.0, 1000, "")
    assert s.poll(11.0) is Step.NOTHING


def test_reply_content_never_asks_for_a_look_at_the_policy_and_the_turn_end_does() -> None:
    """The I/O shell consults poll() only when on_event says so: reply audio, text and
    transcripts (most frames of a session) can only hold a switch back, never bring one on."""
    s = asked_for_standby()
    s.standby_opened()
    # The model speaks unasked (say, a function's late result): no switch until it is done.
    assert s.on_event(p.AudioChunk(b"\0\0", 24000), 11.0) is False
    assert s.on_event(p.TextPart("hi"), 11.0) is False
    assert s.on_event(p.OutputTranscription("hi"), 11.0) is False
    assert s.poll(11.0) is Step.NOTHING, "mid-reply: no switch"
    assert s.on_event(p.TurnComplete(), 11.5) is True
    assert s.poll(11.5) is Step.SWITCH
    assert ready().on_event(p.GoAway(50.0), 1.0) is True
