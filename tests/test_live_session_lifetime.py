"""Session's lifetime: a model with a session limit is replaced at a pause before it, counted
from each connection."""

from __future__ import annotations

from fixtures_live_session import LIMIT_S, LIVE_38, ready, with_fresh_handle

from daemon.live.session import LIMIT_MARGIN_S, RENEW_WITHIN_S, Step


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
