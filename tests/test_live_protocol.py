"""The sans-I/O Live protocol: what pttd sends, and how every kind of server frame is read."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import ContextTurn, LiveConfig
from daemon.live import protocol as p


def setup_body(cfg: LiveConfig, handle: str | None = None) -> dict:
    msg = json.loads(p.setup(cfg, handle))
    assert list(msg) == ["setup"]
    return msg["setup"]


# ---------------------------------------------------------------- builders

def test_setup_for_press_to_talk_defaults() -> None:
    body = setup_body(LiveConfig(model="gemini-live-test"))
    assert body["model"] == "models/gemini-live-test"
    gen = body["generationConfig"]
    assert gen["responseModalities"] == ["AUDIO"]
    assert gen["speechConfig"] == {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}
    assert "temperature" not in gen and "thinkingConfig" not in gen
    assert "enableAffectiveDialog" not in gen and "proactivity" not in body
    assert body["realtimeInputConfig"] == {"automaticActivityDetection": {"disabled": True},
                                           "activityHandling": "START_OF_ACTIVITY_INTERRUPTS"}
    assert body["systemInstruction"]["role"] == "user"
    assert body["systemInstruction"]["parts"][0]["text"] == LiveConfig().system_instruction
    assert body["inputAudioTranscription"] == {} and body["outputAudioTranscription"] == {}
    assert body["sessionResumption"] == {}
    assert body["contextWindowCompression"] == {"slidingWindow": {}}


def test_setup_carries_every_configured_option() -> None:
    cfg = LiveConfig(model="models/m", voice="Puck", language_code="de-DE", temperature=0.7,
                     thinking_budget=0, affective_dialog=True, proactive_audio=True,
                     turn_detection="server", activity_handling="no_interruption",
                     context_compression=False, input_transcription=False,
                     output_transcription=False, system_instruction="")
    body = setup_body(cfg, handle="h-42")
    gen = body["generationConfig"]
    assert gen["speechConfig"] == {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}},
                                   "languageCode": "de-DE"}
    assert gen["temperature"] == 0.7
    assert gen["thinkingConfig"] == {"thinkingBudget": 0}
    assert gen["enableAffectiveDialog"] is True          # inside generationConfig
    assert body["proactivity"] == {"proactiveAudio": True}  # at setup level
    assert body["realtimeInputConfig"] == {"automaticActivityDetection": {"disabled": False},
                                           "activityHandling": "NO_INTERRUPTION"}
    assert body["sessionResumption"] == {"handle": "h-42"}
    for absent in ("contextWindowCompression", "inputAudioTranscription",
                   "outputAudioTranscription", "systemInstruction"):
        assert absent not in body


def test_text_sessions_ask_for_no_voice() -> None:
    body = setup_body(LiveConfig(response_modality="TEXT"))
    assert body["generationConfig"]["responseModalities"] == ["TEXT"]
    assert "speechConfig" not in body["generationConfig"]
    assert "outputAudioTranscription" not in body


NATIVE = "models/gemini-2.5-flash-native-audio-preview-09-2025"


@pytest.mark.parametrize(("overrides", "version", "why"), [
    ({}, "v1beta", "default"),
    ({"affective_dialog": True}, "v1alpha", "affective_dialog"),
    ({"proactive_audio": True}, "v1alpha", "proactive_audio"),
    ({"api_version": "v1"}, "v1", "configured"),
    ({"api_version": "v1beta", "proactive_audio": True}, "v1beta", "needs v1alpha"),
    # Always on with 3.8: nothing is sent for it, so nothing needs v1alpha.
    ({"model": "gemini-3.8-live", "proactive_audio": True}, "v1beta", "default"),
])
def test_api_version_is_chosen_and_explained(overrides: dict, version: str, why: str) -> None:
    chosen, reason = p.choose_api_version(replace(LiveConfig(model=NATIVE), **overrides))
    assert chosen == version
    assert why in reason
    assert p.ws_path(chosen) == (f"/ws/google.ai.generativelanguage.{version}."
                                 "GenerativeService.BidiGenerateContent")


def test_audio_frame_is_standard_base64_pcm_at_16k(monkeypatch: pytest.MonkeyPatch) -> None:
    pcm = bytes(range(256)) * 5
    # The hot-path builder must not go through a dict and json.dumps.
    monkeypatch.setattr(p.json, "dumps", lambda *a, **k: pytest.fail("json.dumps on hot path"))
    frame = p.audio(memoryview(pcm))
    assert isinstance(frame, bytes)   # built once, as it goes out
    blob = json.loads(frame)["realtimeInput"]["audio"]
    assert blob["mimeType"] == "audio/pcm;rate=16000"
    assert base64.b64decode(blob["data"], validate=True) == pcm
    assert "-" not in blob["data"] and "_" not in blob["data"]


def test_activity_and_stream_markers() -> None:
    assert json.loads(p.activity_start()) == {"realtimeInput": {"activityStart": {}}}
    assert json.loads(p.activity_end()) == {"realtimeInput": {"activityEnd": {}}}
    assert json.loads(p.audio_stream_end()) == {"realtimeInput": {"audioStreamEnd": True}}


def test_text_content_and_tool_response_survive_awkward_text() -> None:
    awkward = 'quote " backslash \\ newline \n emoji 🎤 nul-free'
    assert json.loads(p.text(awkward)) == {"realtimeInput": {"text": awkward}}
    content = json.loads(p.client_content([("user", awkward), ("model", "ok")],
                                          turn_complete=False))
    assert content == {"clientContent": {"turns": [
        {"role": "user", "parts": [{"text": awkward}]},
        {"role": "model", "parts": [{"text": "ok"}]}], "turnComplete": False}}
    resp = json.loads(p.tool_response([p.FunctionResponse("c1", "lights", {"ok": True})]))
    assert resp == {"toolResponse": {"functionResponses": [
        {"id": "c1", "name": "lights", "response": {"ok": True}}]}}


def test_initial_context_from_config() -> None:
    assert p.initial_context(LiveConfig()) is None
    cfg = LiveConfig(context=(ContextTurn("user", "I am Sam."), ContextTurn("model", "Hi Sam.")))
    content = json.loads(p.initial_context(cfg) or "")["clientContent"]
    assert content["turnComplete"] is False
    assert [(t["role"], t["parts"][0]["text"]) for t in content["turns"]] == [
        ("user", "I am Sam."), ("model", "Hi Sam.")]


# ---------------------------------------------------------------- parser: every frame kind

PCM = bytes([0xFF, 0xD8, 0x6A, 0x70, 0x65, 0x67])   # base64 needs both '_' and '/' for these


def test_audio_parts_in_either_alphabet_and_case() -> None:
    std = base64.b64encode(PCM).decode()
    url = base64.urlsafe_b64encode(PCM).decode()
    assert "_" in url and "/" in std
    frame = {"server_content": {"model_turn": {"parts": [
        {"inline_data": {"mime_type": "audio/pcm;rate=24000", "data": std}},
        {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": url}},
        {"inlineData": {"mimeType": "audio/pcm;rate=16000", "data": url.rstrip("=")}},
        {"text": "hi"}]}}}
    events = p.parse_server_frame(json.dumps(frame).encode())
    assert events == [p.AudioChunk(PCM, 24000), p.AudioChunk(PCM, 24000),
                      p.AudioChunk(PCM, 16000), p.TextPart("hi")]


def test_turn_end_with_usage_in_the_same_frame() -> None:
    frame = (b'{"serverContent": {"turnComplete": true, "turnCompleteReason": "NEED_MORE_INPUT",'
             b' "waitingForInput": true}, "usageMetadata": {"promptTokenCount": 147,'
             b' "responseTokenCount": 36, "totalTokenCount": 183}}')
    assert p.parse_server_frame(frame) == [p.UsageMetadata(147, 36, 183),
                                           p.TurnComplete("NEED_MORE_INPUT", True)]


@pytest.mark.parametrize(("frame", "expected"), [
    (b'{\n  "setupComplete": {"sessionId": "test_session_id"}\n}\n',
     [p.SetupComplete("test_session_id")]),
    ('{"serverContent": {"inputTranscription": {"text": "test_input", "finished": true}}}',
     [p.InputTranscription("test_input", True)]),
    ('{"serverContent": {"outputTranscription": {"text": "Hello"}}}',
     [p.OutputTranscription("Hello", False)]),
    ('{"serverContent": {"generationComplete": true}}', [p.GenerationComplete()]),
    ('{"serverContent": {"interrupted": true}}', [p.Interrupted()]),
    ('{"serverContent": {"interrupted": true, "turnComplete": true}}',
     [p.Interrupted(), p.TurnComplete()]),
    # interactionStatus, as the SDK's receive() reads it: the status decides when it is there.
    ('{"serverContent": {"turnComplete": true, "interactionStatus": "IN_PROGRESS"}}',
     [p.TurnComplete(interaction_status="IN_PROGRESS")]),
    ('{"serverContent": {"turnComplete": true, "interactionStatus": "IDLE"}}',
     [p.TurnComplete(interaction_status="IDLE")]),
    ('{"serverContent": {"interactionStatus": "IDLE"}}', [p.TurnComplete(None, False, "IDLE")]),
    ('{"serverContent": {"interactionStatus": "IN_PROGRESS"}}', []),
    ('{"server_content": {"turn_complete": true, "turn_complete_reason": "RESPONSE_REJECTED"}}',
     [p.TurnComplete("RESPONSE_REJECTED")]),
    ('{"usageMetadata": {"promptTokenCount": "12", "thoughtsTokenCount": 40, '
     '"totalTokenCount": 52, "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 12}]}}',
     [p.UsageMetadata(12, 0, 52, 40)]),
    ('{"goAway": {"timeLeft": "10s"}}', [p.GoAway(10.0)]),
    ('{"goAway": {"timeLeft": "1.5s"}}', [p.GoAway(1.5)]),
    ('{"goAway": {}}', [p.GoAway(None)]),
    ('{"sessionResumptionUpdate": {"newHandle": "test_handle", "resumable": "true", '
     '"lastConsumedClientMessageIndex": "123456789"}}',
     [p.SessionResumptionUpdate("test_handle", True, 123456789)]),
    ('{"session_resumption_update": {"resumable": false}}',
     [p.SessionResumptionUpdate(None, False, None)]),
    ('{"toolCall": {"functionCalls": [{"id": "c1", "name": "lights", "args": {"room": "k"}}]}}',
     [p.ToolCall((p.FunctionCall("c1", "lights", {"room": "k"}),))]),
    ('{"toolCallCancellation": {"ids": ["c1", "c2"]}}', [p.ToolCallCancellation(("c1", "c2"))]),
    ('{"tool_call": {"function_calls": [{"id": "c2", "name": "f", "args": {"room_name": "k"}}]}}',
     [p.ToolCall((p.FunctionCall("c2", "f", {"room_name": "k"}),))]),   # args keys kept
    ('{"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_SOS"}}',
     [p.Unknown(("voiceActivityDetectionSignal",))]),
    ('{"serverContent": {"generationComplete": true, "newThing": 1}, "other": {}}',
     [p.GenerationComplete(), p.Unknown(("serverContent.newThing",)), p.Unknown(("other",))]),
    ('{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": "image/png", '
     '"data": "AAAA"}}]}}}', [p.Unknown(("inlineData:image/png",))]),
    ('{}', []),
])
def test_server_frames(frame: str | bytes, expected: list) -> None:
    assert p.parse_server_frame(frame) == expected


@pytest.mark.parametrize(("status", "ends"), [
    (None, True), ("INTERACTION_STATUS_UNSPECIFIED", True), ("IDLE", True),
    ("IN_PROGRESS", False), ("REQUIRES_ACTION", False)])
def test_a_turn_ends_the_interaction_as_the_sdk_decides(status: str | None, ends: bool) -> None:
    from google.genai import live, types

    assert p.TurnComplete(interaction_status=status).ends_interaction is ends
    sdk = types.LiveServerContent(turn_complete=True, interaction_status=status)
    assert live._is_interaction_complete(sdk) is ends


@pytest.mark.parametrize(("frame", "reason"), [
    (b'{"serverContent": ', "not JSON"),
    (b"\xff\xfe{}", "not JSON"),
    (b"[1, 2]", "frame is not an object"),
    (b'{"serverContent": []}', "serverContent is not an object"),
    (b'{"serverContent": {"turnComplete": true, "interactionStatus": 1}}',
     "interactionStatus is not a string"),
    (b'{"serverContent": {"modelTurn": {"parts": {}}}}', "parts is not a list"),
    (b'{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": '
     b'"audio/pcm;rate=24000", "data": "*!AAAA"}}]}}}', "not valid base64"),
    (b'{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": '
     b'"audio/pcm;rate=fast", "data": "AAAA"}}]}}}', "bad rate"),
    (b'{"serverContent": {"turnComplete": "yes"}}', "not a boolean"),
    (b'{"goAway": {"timeLeft": "soon"}}', "not a duration"),
    (b'{"sessionResumptionUpdate": {"lastConsumedClientMessageIndex": "1e3"}}',
     "not an integer"),
    (b'{"toolCallCancellation": {"ids": [1]}}', "not a list of strings"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
])
def test_malformed_frames_raise_only_protocol_error(frame: bytes, reason: str) -> None:
    with pytest.raises(p.ProtocolError, match=reason):
        p.parse_server_frame(frame)


def test_odd_length_audio_is_passed_on_for_the_player_to_keep() -> None:
    data = base64.b64encode(b"\x01\x02\x03").decode()
    frame = ('{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":'
             '"audio/pcm;rate=24000","data":"' + data + '"}}]}}}')
    assert p.parse_server_frame(memoryview(frame.encode())) == [p.AudioChunk(b"\x01\x02\x03",
                                                                             24000)]


# ---------------------------------------------------------------- parser: properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=20)

KNOWN_FRAMES = [
    {"setupComplete": {}},
    {"serverContent": {"modelTurn": {"parts": [{"inlineData": {
        "mimeType": "audio/pcm;rate=24000", "data": base64.b64encode(PCM).decode()}}]}}},
    {"serverContent": {"turnComplete": True, "turnCompleteReason": "X"},
     "usageMetadata": {"totalTokenCount": 3}},
    {"serverContent": {"outputTranscription": {"text": "a", "finished": True}}},
    {"toolCall": {"functionCalls": [{"id": "1", "name": "f", "args": {}}]}},
    {"sessionResumptionUpdate": {"newHandle": "h", "resumable": True}},
    {"goAway": {"timeLeft": "5s"}},
]


def _only_events_or_protocol_error(raw: bytes | str) -> None:
    try:
        events = p.parse_server_frame(raw)
    except p.ProtocolError as exc:
        assert str(exc)
        return
    assert isinstance(events, list)
    assert all(isinstance(e, p.Event) for e in events)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_value_gives_events_or_protocol_error(value: object) -> None:
    _only_events_or_protocol_error(json.dumps(value))


def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(KNOWN_FRAMES), st.data(), json_values)
def test_mutated_known_frames_give_events_or_protocol_error(frame: dict, data: st.DataObject,
                                                            replacement: object) -> None:
    frame = json.loads(json.dumps(frame))
    path = data.draw(st.sampled_from(_paths(frame)[1:]))
    target = frame
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    _only_events_or_protocol_error(json.dumps(frame).encode())


@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_random_bytes_give_events_or_protocol_error(raw: bytes) -> None:
    _only_events_or_protocol_error(raw)


@settings(max_examples=200)
@given(st.binary(max_size=300), st.booleans())
def test_audio_round_trips_through_either_alphabet(pcm: bytes, urlsafe: bool) -> None:
    data = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(pcm).decode()
    frame = ('{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":'
             '"audio/pcm;rate=24000","data":"' + data + '"}}]}}}')
    assert p.parse_server_frame(frame) == [p.AudioChunk(pcm, 24000)]
    sent = json.loads(p.audio(pcm))["realtimeInput"]["audio"]["data"]
    assert p.b64decode(sent) == pcm
