"""Session.reconfigure: changed setup renews the session at the next pause, changed context
goes in session where the model takes roles."""

from __future__ import annotations

from fixtures_live_session import (
    LIVE_38,
    NO_ROLES,
    asked_for_standby,
    cfg,
    msg,
    ready,
    with_fresh_handle,
)

from config import ContextTurn
from daemon.live import protocol as p
from daemon.live.session import Step


def test_changed_setup_renews_the_session_at_the_next_pause() -> None:
    s = with_fresh_handle(ready())
    s.activity_start()
    assert "renewed between turns" in s.reconfigure(cfg(voice="Puck"), 5.0)
    assert s.poll(5.0) is Step.NOTHING
    s.activity_end()
    s.on_event(p.TurnComplete(), 6.0)
    s.on_event(p.SessionResumptionUpdate("h2", True), 6.0)
    assert s.poll(6.0) is Step.OPEN_STANDBY
    assert "Puck" in s.setup_frame(s.standby_handle()).decode()


def test_a_standby_opened_before_a_reload_is_discarded() -> None:
    s = asked_for_standby()
    s.standby_opened()
    s.reconfigure(cfg(voice="Puck"), 10.5)
    assert s.poll(10.5) is Step.DISCARD_STANDBY


def test_a_reload_that_leaves_the_setup_alone_changes_nothing() -> None:
    s = ready()
    assert s.reconfigure(cfg(reconnect_max_s=2.0), 5.0) == ""
    assert s.poll(5.0) is Step.NOTHING


def test_changed_context_goes_in_session_where_the_model_takes_roles() -> None:
    s = ready(model=LIVE_38)
    turns = (ContextTurn("user", "I am Sam."), ContextTurn("model", "Hello Sam."))
    assert "[[live.context]]" in s.reconfigure(cfg(model=LIVE_38, context=turns), 5.0)
    assert s.poll(5.0) is Step.SEND_CONTEXT
    assert msg(s.take_context())["clientContent"] == {
        "turns": [{"role": "user", "parts": [{"text": "I am Sam."}]},
                  {"role": "model", "parts": [{"text": "Hello Sam."}]}],
        "turnComplete": False}
    assert s.poll(5.0) is Step.NOTHING         # sent once, no renewal
    assert s.take_context() is None


def test_changed_context_waits_for_a_pause() -> None:
    s = ready(model=LIVE_38)
    s.activity_start()
    s.reconfigure(cfg(model=LIVE_38, context=(ContextTurn("user", "x"),)), 5.0)
    assert s.poll(5.0) is Step.NOTHING
    s.activity_end()
    s.on_event(p.TurnComplete(), 6.0)
    assert s.poll(6.0) is Step.SEND_CONTEXT


def test_changed_context_is_not_sent_in_session_where_the_model_has_no_roles() -> None:
    s = ready(model=NO_ROLES)
    assert s.reconfigure(cfg(model=NO_ROLES, context=(ContextTurn("user", "x"),)), 5.0) == ""
    assert s.poll(5.0) is Step.NOTHING


def test_a_context_update_waiting_while_offline_goes_to_the_resumed_session() -> None:
    s = with_fresh_handle(ready(model=LIVE_38))
    s.lost(2.0, 1011, "")
    s.reconfigure(cfg(model=LIVE_38, context=(ContextTurn("user", "x"),)), 3.0)
    s.connecting()
    assert s.opened(4.0, resumed=True) == []
    assert s.poll(4.0) is Step.SEND_CONTEXT


def test_a_fresh_session_carries_the_new_context_instead_of_an_update() -> None:
    s = ready(model=LIVE_38)
    s.lost(2.0, 1011, "")
    s.reconfigure(cfg(model=LIVE_38, context=(ContextTurn("user", "x"),)), 3.0)
    s.connecting()
    assert len(s.opened(4.0, resumed=False)) == 1
    assert s.poll(4.0) is Step.NOTHING
