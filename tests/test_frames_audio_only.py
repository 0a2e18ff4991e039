"""The audio-only shortcut of the frame parser gives exactly what the general walk gives, for
the frames it takes and for everything that looks almost like them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.live.events import AudioChunk
from daemon.live.frames import ProtocolError, parse_message, parse_server_frame


def audio_msg(pcm: bytes, mime: str = "audio/pcm;rate=24000") -> dict[str, Any]:
    return {"serverContent": {"modelTurn": {"parts": [
        {"inlineData": {"mimeType": mime, "data": base64.b64encode(pcm).decode()}}]}}}


def outcome(call: Any) -> Any:
    try:
        return call()
    except ProtocolError as exc:
        return ("ProtocolError", str(exc))


def assert_same(msg: Any) -> None:
    raw = json.dumps(msg).encode()
    assert outcome(lambda: parse_server_frame(raw)) == outcome(lambda: parse_message(msg))


def test_the_frame_of_a_reply_is_one_audio_chunk() -> None:
    pcm = bytes(range(256)) * 8
    assert parse_server_frame(json.dumps(audio_msg(pcm))) == [AudioChunk(pcm, 24000)]
    assert parse_server_frame(json.dumps(audio_msg(pcm, "audio/pcm"))) == [AudioChunk(pcm, 24000)]
    assert parse_server_frame(json.dumps(audio_msg(pcm, "audio/pcm;rate=16000"))) == \
        [AudioChunk(pcm, 16000)]


# Each takes the frame of a reply a step away from the shortcut's shape.
VARIANTS = [
    lambda m: m["serverContent"].update(turnComplete=True),
    lambda m: m["serverContent"].update(outputTranscription={"text": "hi"}),
    lambda m: m.update(usageMetadata={"totalTokenCount": 3}),
    lambda m: m["serverContent"]["modelTurn"]["parts"].append({"text": "x"}),
    lambda m: m["serverContent"]["modelTurn"]["parts"].clear(),
    lambda m: m["serverContent"]["modelTurn"].update(role="model"),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0].update(thought=False),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].update(extra=1),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].pop("data"),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].pop("mimeType"),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].update(data=None),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].update(data=12),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].update(data="*!"),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].update(mimeType=7),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].update(
        mimeType="audio/pcm;rate=abc"),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].update(
        mimeType="image/png"),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].update(
        mime_type=m["serverContent"]["modelTurn"]["parts"][0]["inlineData"].pop("mimeType")),
    lambda m: m["serverContent"]["modelTurn"]["parts"][0].update(
        inline_data=m["serverContent"]["modelTurn"]["parts"][0].pop("inlineData")),
    lambda m: m["serverContent"].update(model_turn=m["serverContent"].pop("modelTurn")),
    lambda m: m.update(server_content=m.pop("serverContent")),
    lambda m: m["serverContent"]["modelTurn"].update(parts={"0": 1}),
    lambda m: m["serverContent"]["modelTurn"].update(parts="abc"),
    lambda m: m["serverContent"].update(modelTurn=[1]),
    lambda m: m.update(serverContent=None),
]


@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_a_frame_almost_like_a_reply_chunk_parses_as_the_general_walk_does(variant: int) -> None:
    msg = audio_msg(b"\x01\x02" * 100)
    VARIANTS[variant](msg)
    assert_same(msg)


leaf = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(
    ["audio/pcm;rate=24000", "audio/pcm", "AAEC", "text/plain", "true", "", "=="])
keys = st.sampled_from(["serverContent", "modelTurn", "parts", "inlineData", "data", "mimeType",
                        "text", "turnComplete", "model_turn", "inline_data"])
json_values = st.recursive(leaf, lambda c: st.lists(c, max_size=2)
                           | st.dictionaries(keys, c, max_size=2), max_leaves=10)


@settings(max_examples=400, deadline=None)
@given(msg=json_values)
def test_any_message_parses_as_the_general_walk_does(msg: Any) -> None:
    assert_same(msg)
