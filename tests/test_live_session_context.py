"""Session opening: the configured context on fresh sessions only, and the resumption handle
in the setup frame."""

from __future__ import annotations

from fixtures_live_session import cfg, msg, ready

from config import ContextTurn
from daemon.live import protocol as p
from daemon.live.session import Session, State


def test_a_fresh_session_gets_the_configured_context() -> None:
    s = Session(cfg(context=(ContextTurn("user", "I am Sam."),)), key_source="k")
    assert s.connecting() is None
    [frame] = s.opened(0.0, resumed=False)
    assert msg(frame)["clientContent"] == {
        "turns": [{"role": "user", "parts": [{"text": "I am Sam."}]}], "turnComplete": False}
    assert s.state is State.READY


def test_a_resumed_session_does_not_get_the_context_again() -> None:
    s = Session(cfg(context=(ContextTurn("user", "I am Sam."),)), key_source="k")
    s.handle = "h1"
    assert s.connecting() == "h1"
    assert s.opened(0.0, resumed=True) == []


def test_the_setup_frame_resumes_with_the_handle() -> None:
    s = ready()
    assert msg(s.setup_frame("h9"))["setup"]["sessionResumption"] == {"handle": "h9"}


def test_a_resumption_update_keeps_the_newest_handle() -> None:
    s = ready()
    s.on_event(p.SessionResumptionUpdate("h1", True), 1.0)
    s.on_event(p.SessionResumptionUpdate(None, False), 2.0)
    assert s.handle == "h1"
