"""Session's failures: classified, reported once, retried with a backoff that a long-lived
session resets, on a fake clock."""

from __future__ import annotations

import logging

import pytest
from fixtures_live_session import cfg, ready, with_fresh_handle

from daemon.live.failures import (
    ClosedEarly,
    HandshakeFailed,
    SetupTimeout,
    UpgradeRefused,
    classify_error,
)
from daemon.live.session import STABLE_S, Session, State


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
