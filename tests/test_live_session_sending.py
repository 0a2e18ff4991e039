"""Session's sending: nothing before a session is ready, frames as wire bytes, and when a
turn owes a reply."""

from __future__ import annotations

from typing import Any

import pytest
from fixtures_live_session import cfg, msg, ready

from daemon.live import protocol as p
from daemon.live.session import Session


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
