"""The official google-genai SDK as the oracle for our protocol: the SDK completes turns against
the emulator, its strict pydantic types accept every frame the emulator sends and every frame
pttd builds, and every frame the SDK was seen sending is accepted by the emulator."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures_live import TEST_KEY, ClientHarness, live_config, tone16k
from google import genai
from google.genai import types
from websockets.asyncio.client import connect

from config import ContextTurn, LiveConfig
from config.apikey import ApiKey
from daemon.devkit.emulator import EmulatorThread
from daemon.devkit.tool_script import ScriptedCall, ScriptedTurn
from daemon.live import protocol as p

GOLDEN = Path(__file__).parent / "fixtures" / "golden_sdk_client_frames.jsonl"


def sdk_client(url: str) -> genai.Client:
    """The SDK pointed at the emulator over plain ws:// (docs/live-api.md §6, variant B)."""
    client = genai.Client(api_key=TEST_KEY, http_options=types.HttpOptions(api_version="v1beta"))
    client._api_client._websocket_base_url = lambda *a, **k: url  # type: ignore[method-assign]
    client._api_client._websocket_ssl_ctx = {}
    return client


def press_to_talk_config(**fields: Any) -> types.LiveConnectConfig:
    """AUDIO replies, the activity marked by the client (as pttd's button does)."""
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)),
        **fields)


def assert_sdk_accepts_everything_sent(emu: EmulatorThread) -> int:
    sent = emu.call(lambda e: list(e.sent))
    for _, raw in sent:
        types.LiveServerMessage.model_validate_json(raw)   # strict: unknown fields rejected
    return len(sent)


def test_sdk_completes_a_text_turn_and_an_audio_turn() -> None:
    pcm = tone16k(500, hz=400)

    async def main(url: str, emu: EmulatorThread) -> tuple[str, bytes, list[Any]]:
        client = sdk_client(url)
        async with client.aio.live.connect(model="gemini-live-test",
                                           config={"response_modalities": ["TEXT"]}) as s:
            await s.send_client_content(turns={"role": "user", "parts": [{"text": "hello"}]})
            text = "".join([m.text async for m in s.receive() if m.text])
        config = types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            realtime_input_config=types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)),
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            session_resumption=types.SessionResumptionConfig())
        async with client.aio.live.connect(model="gemini-live-test", config=config) as s:
            await s.send_realtime_input(activity_start=types.ActivityStart())
            for i in range(0, len(pcm), 1280):
                await s.send_realtime_input(audio=types.Blob(data=pcm[i:i + 1280],
                                                             mime_type="audio/pcm;rate=16000"))
            await s.send_realtime_input(activity_end=types.ActivityEnd())
            messages = [m async for m in s.receive()]
            emu.inject("go_away", time_left_s=30.0, close=False)
            async for m in s.receive():
                messages.append(m)
                if m.go_away:
                    break
        audio = b"".join(m.data for m in messages if m.data)
        return text, audio, messages

    with EmulatorThread(pace="burst") as emu:
        text, audio, messages = asyncio.run(main(emu.url, emu))
        sent = assert_sdk_accepts_everything_sent(emu)
    assert text == "You said: hello"
    assert len(audio) == 24000
    spectrum = np.abs(np.fft.rfft(np.frombuffer(audio, "<i2") * np.hanning(12000)))
    assert abs(np.argmax(spectrum) * 24000 / 12000 - 400) < 4
    content = [m.server_content for m in messages if m.server_content]
    assert any(c.input_transcription and c.input_transcription.finished for c in content)
    assert any(c.output_transcription for c in content)
    assert any(c.generation_complete for c in content)
    done = [m for m in messages if m.server_content and m.server_content.turn_complete]
    assert done and done[0].usage_metadata and done[0].usage_metadata.total_token_count
    assert any(m.session_resumption_update and m.session_resumption_update.new_handle
               for m in messages)
    assert messages[-1].go_away is not None and messages[-1].go_away.time_left == "30s"
    assert sent >= 20


def test_sdk_accepts_interruption_frames() -> None:
    async def main(url: str) -> list[Any]:
        client = sdk_client(url)
        async with client.aio.live.connect(model="gemini-live-test",
                                           config=press_to_talk_config()) as s:
            await s.send_realtime_input(activity_start=types.ActivityStart())
            await s.send_realtime_input(audio=types.Blob(data=tone16k(1500),
                                                         mime_type="audio/pcm;rate=16000"))
            await s.send_realtime_input(activity_end=types.ActivityEnd())
            messages = []
            async for m in s.receive():
                messages.append(m)
                if m.data:
                    await s.send_realtime_input(activity_start=types.ActivityStart())
                    break
            messages += [m async for m in s.receive()]
            return messages

    with EmulatorThread(pace="realtime") as emu:
        messages = asyncio.run(main(emu.url))
        assert_sdk_accepts_everything_sent(emu)
    flags = [(m.server_content.interrupted, m.server_content.turn_complete)
             for m in messages if m.server_content and not m.data]
    assert flags[-2:] == [(True, None), (None, True)]


def _validate_client_frame(frame: str) -> None:
    msg = json.loads(frame)
    setup = msg.get("setup")
    if setup is not None and "realtimeInputConfig" in setup:
        # The SDK's setup type lacks realtimeInputConfig: validate it on its own.
        types.RealtimeInputConfig.model_validate(setup.pop("realtimeInputConfig"))
    types.LiveClientMessage.model_validate_json(json.dumps(msg))


@pytest.mark.parametrize("overrides", [
    {},
    {"model": "gemini-live-2.5-flash-preview", "response_modality": "TEXT",
     "context_compression": False, "system_instruction": ""},
    {"model": "gemini-2.5-flash-native-audio-preview-09-2025", "voice": "Zephyr",
     "language_code": "en-GB", "temperature": 1.2, "thinking_budget": 0,
     "affective_dialog": True, "proactive_audio": True, "turn_detection": "server",
     "activity_handling": "no_interruption", "input_transcription": False},
    {"model": "gemini-3.8-live-extended-thinking", "thinking_level": "high",
     "custom_vocabulary": ("Siobhan", "Raspberry Pi"), "transcription_languages": ("en-GB", "cy"),
     "compression_trigger_tokens": 25600, "proactive_audio": True},
    {"model": "gemini-3.1-flash-live-preview", "thinking_level": "minimal"},
])
def test_every_setup_pttd_builds_passes_the_sdk_types(overrides: dict[str, Any]) -> None:
    cfg = replace(LiveConfig(), **overrides)
    _validate_client_frame(p.setup(cfg))
    _validate_client_frame(p.setup(cfg, handle="resume-me"))


def test_the_sdk_reads_the_new_setup_fields_as_pttd_means_them() -> None:
    """The names are right, not merely accepted: the SDK's own types hold the values."""
    cfg = LiveConfig(model="gemini-3.8-live-extended-thinking", thinking_level="low",
                     custom_vocabulary=("Siobhan",), transcription_languages=("cy",),
                     compression_trigger_tokens=25600)
    msg = json.loads(p.setup(cfg))
    msg["setup"].pop("realtimeInputConfig")
    setup = types.LiveClientMessage.model_validate(msg).setup
    assert setup is not None and setup.generation_config is not None
    thinking = setup.generation_config.thinking_config
    assert thinking is not None and thinking.thinking_level == types.ThinkingLevel.LOW
    transcription = setup.input_audio_transcription
    assert transcription is not None
    assert transcription.custom_vocabulary == ["Siobhan"]
    assert transcription.language_codes == ["cy"]
    compression = setup.context_window_compression
    assert compression is not None and compression.trigger_tokens == 25600
    assert setup.proactivity is None and setup.generation_config.enable_affective_dialog is None


def test_every_other_message_pttd_builds_passes_the_sdk_types() -> None:
    frames = [p.audio(tone16k(40)), p.audio(b""), p.activity_start(), p.activity_end(),
              p.audio_stream_end(), p.text("turn on the lights"),
              p.client_content([("user", "I am Sam."), ("model", "Hi Sam.")],
                               turn_complete=False),
              p.tool_response([p.FunctionResponse("call-1", "lights", {"result": "ok"})])]
    for frame in frames:
        _validate_client_frame(frame)
    with pytest.raises(ValueError):   # the oracle is strict: a wrong field name is caught
        _validate_client_frame('{"realtimeInput": {"activityBegin": {}}}')


def test_frames_the_client_really_sent_pass_the_sdk_types(api_key: ApiKey) -> None:
    cfg = live_config("", context=(ContextTurn("user", "I am Sam."),))

    async def main(url: str) -> None:
        async with ClientHarness(replace(cfg, endpoint=url), api_key) as h:
            await h.ready()
            assert h.client.activity_start()
            assert h.client.send_audio(tone16k(100))
            assert h.client.activity_end()
            await h.wait(lambda: bool(h.of(p.TurnComplete)))
            assert h.client.send_client_content([("user", "and now?")], turn_complete=True)
            await h.wait(lambda: len(h.of(p.TurnComplete)) == 2)

    with EmulatorThread(pace="burst") as emu:
        asyncio.run(main(emu.url))
        frames = [f for _, f in emu.frames]
    assert [next(iter(f)) for f in frames] == (["setup", "clientContent"] + ["realtimeInput"] * 3
                                               + ["clientContent"])
    for frame in frames:
        _validate_client_frame(json.dumps(frame))


def _golden_frames() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    lines = [json.loads(line) for line in GOLDEN.read_text().splitlines()]
    handshake, frames = lines[0], [line["data"] for line in lines[1:]]
    assert handshake["event"] == "connect"
    for frame in frames:
        blob = frame.get("realtime_input", {}).get("audio")
        if blob and "..." in blob["data"]:
            # The fixture elides this payload ("<428 b64 chars>"); put back PCM of that size.
            blob["data"] = "AAEA" * 107
    return handshake, frames


def test_every_golden_sdk_frame_is_accepted_by_the_emulator(emulator: EmulatorThread) -> None:
    handshake, frames = _golden_frames()
    headers = {k: v for k, v in handshake["headers"].items()
               if k in ("x-goog-api-key", "Content-Type", "user-agent", "x-goog-api-client")}

    async def main() -> list[Any]:
        ws = await connect(emulator.url + handshake["path"], additional_headers=headers)
        await ws.send(json.dumps(frames[0]))
        assert p.parse_server_frame(await ws.recv()) == [p.SetupComplete()]
        for frame in frames[1:]:
            await ws.send(json.dumps(frame))
        events: list[Any] = []
        # Four turns: audio + audioStreamEnd and the empty activity (either may be interrupted
        # by the next), the text, and clientContent.
        while sum(isinstance(e, p.TurnComplete) for e in events) < 4:
            events += p.parse_server_frame(await asyncio.wait_for(ws.recv(), 10))
        await asyncio.wait_for(await ws.ping(), 5)      # still open: nothing was refused
        await ws.close()
        return events

    events = asyncio.run(main())
    session = emulator.sessions[0]
    assert session.version == "v1beta" and session.close_code == 1000
    assert not session.closed_by_server
    assert [f for _, f in emulator.frames] == frames
    assert session.transcribe_in and session.transcribe_out and not session.manual_activity
    replies = [t.get("text") for t in session.history if t["role"] == "model"]
    assert len(replies) == 4 and replies[2:] == ["You said: typed text", "You said: Hello"]
    assert any(isinstance(e, p.AudioChunk) for e in events)


def test_sdk_against_a_3_8_session_reads_every_new_field() -> None:
    """The SDK sets up an extended-thinking 3.8 session with the new options, reads a turn that
    ends waiting for input and one that ends IDLE, and sees the session deadline close."""
    config = press_to_talk_config(
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.HIGH),
        input_audio_transcription=types.AudioTranscriptionConfig(
            custom_vocabulary=["Siobhan"], language_codes=["en-GB"]),
        context_window_compression=types.ContextWindowCompressionConfig(
            trigger_tokens=25600, sliding_window=types.SlidingWindow()))

    async def main(url: str) -> tuple[list[Any], list[Any], Exception]:
        client = sdk_client(url)
        async with client.aio.live.connect(model="gemini-3.8-live-extended-thinking",
                                           config=config) as s:
            await s.send_realtime_input(activity_start=types.ActivityStart())
            await s.send_realtime_input(activity_end=types.ActivityEnd())
            waiting = [m async for m in s.receive()]
            await s.send_realtime_input(activity_start=types.ActivityStart())
            await s.send_realtime_input(audio=types.Blob(data=tone16k(300),
                                                         mime_type="audio/pcm;rate=16000"))
            await s.send_realtime_input(activity_end=types.ActivityEnd())
            answered = [m async for m in s.receive()]
            try:
                async for _ in s.receive():
                    pass
            except Exception as exc:  # the SDK raises its APIError on any close
                return waiting, answered, exc
        raise AssertionError("the session was not closed at its deadline")

    with EmulatorThread(pace="burst", session_deadline_s=1.0) as emu:
        waiting, answered, closed = asyncio.run(main(emu.url))
        assert_sdk_accepts_everything_sent(emu)
        session = emu.sessions[0]
    assert not session.refused
    # The SDK spells the nested keys in snake_case; the emulator's model rules read either.
    assert session.setup["inputAudioTranscription"] == {"custom_vocabulary": ["Siobhan"],
                                                        "language_codes": ["en-GB"]}
    last = waiting[-1].server_content
    assert last is not None and last.waiting_for_input is True
    assert last.turn_complete_reason == types.TurnCompleteReason.NEED_MORE_INPUT
    assert last.interaction_status == types.InteractionStatus.IDLE
    assert not any(m.data for m in waiting)
    assert any(m.data for m in answered)
    end = answered[-1]
    assert end.server_content is not None and end.server_content.turn_complete
    assert end.server_content.interaction_status == types.InteractionStatus.IDLE
    assert end.usage_metadata is not None and end.usage_metadata.total_token_count
    assert "1011" in str(closed) and "Deadline expired" in str(closed)


def test_sdk_sees_a_silent_barge_in_as_the_preview_models_send_it() -> None:
    """barge_in_end="silent": after the new activityStart neither interrupted nor the old
    turnComplete arrives; the next thing the SDK reads is the new reply."""
    async def main(url: str) -> list[Any]:
        client = sdk_client(url)
        config = press_to_talk_config(
            input_audio_transcription=types.AudioTranscriptionConfig())
        async with client.aio.live.connect(model="gemini-3.8-live", config=config) as s:
            await s.send_realtime_input(activity_start=types.ActivityStart())
            await s.send_realtime_input(audio=types.Blob(data=tone16k(1500),
                                                         mime_type="audio/pcm;rate=16000"))
            await s.send_realtime_input(activity_end=types.ActivityEnd())
            async for m in s.receive():
                if m.data:
                    await s.send_realtime_input(activity_start=types.ActivityStart())
                    await s.send_realtime_input(audio=types.Blob(
                        data=tone16k(200), mime_type="audio/pcm;rate=16000"))
                    await s.send_realtime_input(activity_end=types.ActivityEnd())
                    break
            return [m async for m in s.receive()]

    with EmulatorThread(pace="realtime", barge_in_end="silent") as emu:
        messages = asyncio.run(main(emu.url))
        assert_sdk_accepts_everything_sent(emu)
    content = [m.server_content for m in messages if m.server_content]
    assert not any(c.interrupted for c in content)
    assert sum(bool(c.turn_complete) for c in content) == 1 and content[-1].turn_complete
    heard = [c.input_transcription.text for c in content if c.input_transcription]
    assert heard[-1] == "<200 ms of audio>"


def test_sdk_hears_a_non_blocking_functions_answer_in_a_model_turn_of_its_own() -> None:
    """The emulator's `later` tool-script turns as the service runs NON_BLOCKING functions
    (reference/live-api.md, toolResponse `scheduling`): the model calls, ends its turn without
    waiting; a WHEN_IDLE answer is then spoken in a model turn with no user turn before it,
    ending in turnComplete; a SILENT one is not spoken."""
    declared = types.Tool(function_declarations=[types.FunctionDeclaration(
        name="porch_light", description="Switch the porch light on.",
        behavior=types.Behavior.NON_BLOCKING)])
    turns = (ScriptedTurn("porch light on", (ScriptedCall("porch_light"),), later=True),
             ScriptedTurn("and quietly", (ScriptedCall("porch_light"),), later=True))

    async def answer(s: Any, call: types.FunctionCall,
                     scheduling: types.FunctionResponseScheduling) -> list[Any]:
        await s.send_tool_response(function_responses=[types.FunctionResponse(
            id=call.id, name=call.name, response={"output": "on"}, scheduling=scheduling)])
        return [m async for m in s.receive()]

    async def main(url: str) -> tuple[list[Any], list[Any], list[Any]]:
        client = sdk_client(url)
        config = press_to_talk_config(tools=[declared],
                                      output_audio_transcription=types.AudioTranscriptionConfig())
        async with client.aio.live.connect(model="gemini-3.8-live", config=config) as s:
            await s.send_realtime_input(activity_start=types.ActivityStart())
            await s.send_realtime_input(activity_end=types.ActivityEnd())
            asked = [m async for m in s.receive()]
            call = next(m.tool_call for m in asked if m.tool_call).function_calls[0]
            spoken = await answer(s, call, types.FunctionResponseScheduling.WHEN_IDLE)
            await s.send_realtime_input(activity_start=types.ActivityStart())
            await s.send_realtime_input(activity_end=types.ActivityEnd())
            again = [m async for m in s.receive()]
            call = next(m.tool_call for m in again if m.tool_call).function_calls[0]
            await s.send_tool_response(function_responses=[types.FunctionResponse(
                id=call.id, name=call.name, response={"output": "on"},
                scheduling=types.FunctionResponseScheduling.SILENT)])
            # Nothing is spoken for it: the next thing read is the next turn's answer.
            await s.send_realtime_input(activity_start=types.ActivityStart())
            await s.send_realtime_input(activity_end=types.ActivityEnd())
            return asked, spoken, [m async for m in s.receive()]

    with EmulatorThread(pace="burst", tool_turns=turns) as emu:
        asked, spoken, after_silent = asyncio.run(main(emu.url))
        assert_sdk_accepts_everything_sent(emu)
    said = [m.server_content.output_transcription.text for m in asked
            if m.server_content and m.server_content.output_transcription]
    assert said == ["One moment."] and asked[-1].server_content.turn_complete
    # The answer's turn: audio, what it says, and its end.
    assert any(m.data for m in spoken) and spoken[-1].server_content.turn_complete
    texts = [m.server_content.output_transcription.text for m in spoken
             if m.server_content and m.server_content.output_transcription]
    assert texts == ['porch_light: "on"']
    # Had the SILENT answer been spoken, its turn would have come first.
    assert not any(m.data for m in after_silent)
    assert after_silent[-1].server_content.waiting_for_input is True
