"""Helpers for Session's pure tests: a config, a ready session on a fake clock, and the
steps that bring one to a fresh handle, a standby or the end of a turn."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from config import LiveConfig
from daemon.live import protocol as p
from daemon.live.session import Session, Step

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
