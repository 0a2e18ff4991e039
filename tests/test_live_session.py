"""Session, the Live session's pure policy: one behaviour per test, on a fake clock."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import pytest

from config import ContextTurn, LiveConfig
from daemon.live import protocol as p
from daemon.live.failures import (
    ClosedEarly,
    HandshakeFailed,
    SetupTimeout,
    UpgradeRefused,
    classify_error,
)
from daemon.live.session import (
    GO_AWAY_DEFAULT_S,
    LIMIT_MARGIN_S,
    RENEW_WITHIN_S,
    STABLE_S,
    Session,
    State,
    Step,
)

NO_LIMIT = "models/gemini-2.5-flash-native-audio-preview-09-2025"  # no session limit, no roles
LIVE_38 = "models/gemini-3.8-live"                                  # 58 min limit, roles
NO_ROLES = "models/gemini-3.1-flash-live-preview"
LIMIT_S = 58 * 60


def cfg(**overrides: Any) -> LiveConfig:
    base = LiveConfig(endpoint="ws://127.0.0.1:1", model=NO_LIMIT, reconnect_min_s=0.5,
                      reconnect_max_s=10.0, setup_timeout_s=10.0)
    return replace(base, **overrides)


def ready(now: float = 0.0, **overrides: Any) -> Session:
    """A session whose first connection is set up at `now`."""
    s = Session(cfg(**overrides), key_source="/etc/pttd/api_key", rand=lambda: 0.5)
    s.connecting()
    s.opened(now, resumed=False)
    return s


def with_fresh_handle(s: Session, now: float = 1.0, handle: str = "h1") -> Session:
    s.on_event(p.SessionResumptionUpdate(handle, True), now)
    return s


def asked_for_standby(**overrides: Any) -> Session:
    """A quiet session with a fresh handle told by goAway at 10 s to go within 50 s."""
    s = with_fresh_handle(ready(**overrides))
    s.on_event(p.GoAway(50.0), 10.0)
    assert s.poll(10.0) is Step.OPEN_STANDBY
    return s


def one_turn(s: Session, now: float) -> None:
    assert s.activity_start() is not None
    assert s.activity_end() is not None
    s.on_event(p.AudioChunk(b"\0\0", 24000), now)
    s.on_event(p.TurnComplete(), now)


def msg(frame: bytes | None) -> Any:
    assert frame is not None
    return json.loads(frame)


# ---------------------------------------------------------------- sending


@pytest.mark.parametrize("send", [
    lambda s: s.activity_start(), lambda s: s.audio(b"\0\0"), lambda s: s.activity_end(),
    lambda s: s.audio_stream_end(), lambda s: s.tool_response([]),
    lambda s: s.client_content([("user", "x")], turn_complete=True)])
def test_nothing_is_sent_before_a_session_is_ready(send: Any) -> None:
    s = Session(cfg(), key_source="k")
    assert send(s) is None
    s.connecting()
    assert send(s) is None


def test_frames_are_bytes_of_the_wire_protocol() -> None:
    s = ready()
    assert msg(s.activity_start()) == {"realtimeInput": {"activityStart": {}}}
    assert msg(s.audio(b"\1\0"))["realtimeInput"]["audio"]["data"] == "AQA="
    assert msg(s.activity_end()) == {"realtimeInput": {"activityEnd": {}}}
    assert msg(s.audio_stream_end()) == {"realtimeInput": {"audioStreamEnd": True}}
    response = msg(s.tool_response([p.FunctionResponse("1", "f", {"ok": True})]))
    assert response["toolResponse"]["functionResponses"][0]["id"] == "1"


def test_the_session_is_quiet_until_the_user_speaks() -> None:
    s = ready()
    assert s.quiet
    s.activity_start()
    assert not s.quiet


def test_a_reply_is_owed_from_activity_end_until_turn_complete() -> None:
    s = ready()
    s.activity_start()
    s.activity_end()
    assert not s.quiet
    s.on_event(p.AudioChunk(b"\0\0", 24000), 1.0)
    assert not s.quiet
    s.on_event(p.TurnComplete(), 1.0)
    assert s.quiet


def test_audio_starts_a_turn_under_server_turn_detection() -> None:
    s = ready(turn_detection="server")
    s.audio(b"\0\0")
    assert not s.quiet


def test_audio_alone_does_not_start_a_turn_under_button_turn_detection() -> None:
    s = ready()
    s.audio(b"\0\0")
    assert s.quiet


def test_reply_audio_between_turns_makes_the_session_busy() -> None:
    s = ready()
    s.on_event(p.OutputTranscription("hello"), 1.0)
    assert not s.quiet


def test_client_content_that_completes_a_turn_owes_a_reply() -> None:
    s = ready()
    frame = msg(s.client_content([("user", "and now?")], turn_complete=True))
    assert frame["clientContent"]["turnComplete"] is True
    assert not s.quiet


# ---------------------------------------------------------------- opening and context


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


# ---------------------------------------------------------------- failures and retries


def test_a_refused_resumption_falls_back_to_a_fresh_session_at_once() -> None:
    s = ready()
    with_fresh_handle(s)
    s.lost(5.0, 1011, "Internal error occurred.")
    assert s.connecting() == "h1"
    retry = s.open_failed(ClosedEarly(1007, "Request contains an invalid argument."))
    assert retry.delay == 0.0 and retry.level == logging.WARNING
    assert s.connecting() is None


def test_a_refused_fresh_setup_backs_off_slowly() -> None:
    s = Session(cfg(), key_source="k", rand=lambda: 0.5)
    s.connecting()
    retry = s.open_failed(ClosedEarly(1007, "Request contains an invalid argument."))
    assert retry.delay == 45.0 and retry.level == logging.ERROR
    assert "refused the session setup" in s.problem


def test_a_missing_model_names_the_key_and_the_model() -> None:
    s = Session(cfg(model="models/gemini-gone"), key_source="k", rand=lambda: 0.5)
    s.connecting()
    retry = s.open_failed(ClosedEarly(
        1008, "models/gemini-gone is not found for API version v1beta, or is not supported"))
    assert retry.delay == 45.0 and retry.level == logging.ERROR
    assert '[live] model = "models/gemini-gone"' in s.problem
    assert "not found" in s.problem
    assert s.problem in retry.line and "close 1008" in retry.line


def test_a_rejected_key_names_where_the_key_came_from() -> None:
    s = Session(cfg(), key_source="/etc/pttd/api_key", rand=lambda: 0.5)
    s.connecting()
    retry = s.open_failed(UpgradeRefused(403))
    assert retry.delay == 90.0
    assert "API key from /etc/pttd/api_key" in s.problem


def test_the_same_failure_again_is_logged_at_debug_level() -> None:
    s = Session(cfg(), key_source="k", rand=lambda: 0.5)
    s.connecting()
    first = s.open_failed(UpgradeRefused(503))
    s.connecting()
    second = s.open_failed(UpgradeRefused(503))
    assert (first.level, second.level) == (logging.WARNING, logging.DEBUG)
    assert second.delay == 2 * first.delay


def test_a_transient_failure_sets_no_problem() -> None:
    s = Session(cfg(), key_source="k")
    s.connecting()
    s.open_failed(OSError(111, "Connection refused"))
    assert s.problem == ""


def test_a_ready_session_clears_the_problem() -> None:
    s = Session(cfg(), key_source="k")
    s.connecting()
    s.open_failed(UpgradeRefused(429))
    assert s.problem
    s.connecting()
    s.opened(1.0, resumed=False)
    assert s.problem == ""


def test_a_close_code_1008_mid_session_is_a_rejected_request_resumed_quickly() -> None:
    s = ready()
    retry = s.lost(1.0, 1008, "Operation is not implemented, or supported, or enabled.")
    assert retry.failure.kind == "rejected" and retry.delay == 0.375
    assert s.state is State.CONNECTING


def test_losing_the_session_loses_the_turn_in_flight() -> None:
    s = ready()
    s.activity_start()
    s.lost(1.0, 1006, "")
    assert s.quiet


def test_a_stalled_connection_is_a_transient_failure() -> None:
    s = ready()
    retry = s.lost(1.0, 1006, "", stalled=True)
    assert retry.failure.kind == "transient" and "stalled" in retry.line


def test_a_session_that_lived_long_resets_the_backoff() -> None:
    s = ready()
    first = s.lost(1.0, 1011, "x")
    s.connecting()
    s.opened(2.0, resumed=True)
    second = s.lost(2.0 + STABLE_S, 1011, "y")
    assert second.delay == first.delay


def test_a_short_lived_session_keeps_backing_off() -> None:
    s = ready()
    first = s.lost(1.0, 1011, "x")
    s.connecting()
    s.opened(2.0, resumed=True)
    second = s.lost(3.0, 1011, "y")
    assert second.delay == 2 * first.delay


def test_retrying_and_closing_are_offline() -> None:
    s = ready()
    s.lost(1.0, 1011, "")
    s.retrying()
    assert s.state is State.OFFLINE
    s.connecting()
    s.opened(2.0, resumed=True)
    s.closed()
    assert s.state is State.OFFLINE


@pytest.mark.parametrize(("exc", "kind", "detail"), [
    (UpgradeRefused(401), "auth", "HTTP 401 at the WebSocket upgrade"),
    (UpgradeRefused(404), "config", "HTTP 404 at the WebSocket upgrade"),
    (UpgradeRefused(429), "quota", "HTTP 429 at the WebSocket upgrade"),
    (UpgradeRefused(502), "transient", "HTTP 502 at the WebSocket upgrade"),
    (ClosedEarly(1011, "x resource_exhausted y"), "quota", "close 1011: x resource_exhausted y"),
    (SetupTimeout(), "transient", "no setupComplete in time"),
    (TimeoutError(), "transient", "connect timed out"),
    (ConnectionRefusedError(111, "Connection refused"), "transient",
     "network: Connection refused"),
    (HandshakeFailed("InvalidUpgrade"), "transient", "handshake failed (InvalidUpgrade)"),
    (ValueError("x"), "transient", "ValueError"),
])
def test_error_classification(exc: BaseException, kind: str, detail: str) -> None:
    failure = classify_error(exc)
    assert (failure.kind, failure.detail) == (kind, detail)


# ---------------------------------------------------------------- goAway switch-over


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


# ---------------------------------------------------------------- session lifetime


def test_a_model_with_a_session_limit_is_replaced_in_the_last_minutes_before_it() -> None:
    s = with_fresh_handle(ready(model=LIVE_38))
    due = LIMIT_S - LIMIT_MARGIN_S
    assert s.wake_at(1.0) == due - RENEW_WITHIN_S
    assert s.poll(due - RENEW_WITHIN_S - 1) is Step.NOTHING
    assert s.poll(due - RENEW_WITHIN_S) is Step.OPEN_STANDBY


def test_the_session_limit_waits_for_a_pause_until_the_last_moment() -> None:
    s = with_fresh_handle(ready(model=LIVE_38))
    s.activity_start()
    due = LIMIT_S - LIMIT_MARGIN_S
    assert s.poll(due - RENEW_WITHIN_S) is Step.NOTHING
    assert s.wake_at(due - RENEW_WITHIN_S) == due - 10.0
    assert s.poll(due - 10.0) is Step.OPEN_STANDBY


def test_the_session_limit_counts_from_each_connection() -> None:
    s = with_fresh_handle(ready(model=LIVE_38))
    due = LIMIT_S - LIMIT_MARGIN_S
    s.poll(due - RENEW_WITHIN_S)
    s.standby_opened()
    s.poll(due - RENEW_WITHIN_S)
    s.switched(due - RENEW_WITHIN_S)
    assert s.wake_at(due) == 2 * due - 2 * RENEW_WITHIN_S


def test_a_model_without_a_session_limit_is_never_replaced_on_its_own() -> None:
    s = with_fresh_handle(ready())
    assert s.wake_at(1.0) is None
    assert s.poll(24 * 3600.0) is Step.NOTHING


# ---------------------------------------------------------------- reload


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
