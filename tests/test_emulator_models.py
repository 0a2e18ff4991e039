"""The emulator follows each model's rules as the service does: it refuses with 1007 what the
model rejects, ends turns with waitingForInput and interactionStatus where the model sends them,
can end a barge-in silently, closes at the session deadline, and takes clientContent with roles
in the middle of a 3.8 session. Every frame it sends passes the SDK's strict types."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fixtures_emulator import open_session, read_turn, speak
from fixtures_live import TEST_KEY, tone16k
from google.genai import types
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from config import LiveConfig
from daemon.devkit.emulator import EmulatorThread
from daemon.live import protocol as p

NATIVE = "models/gemini-2.5-flash-native-audio-preview-09-2025"
GEN = "generationConfig"


def sdk_accepts_every_frame(emu: EmulatorThread) -> None:
    for _, raw in emu.call(lambda e: list(e.sent)):
        types.LiveServerMessage.model_validate_json(raw)


async def refused(url: str, setup: dict[str, Any]) -> tuple[int | None, str]:
    ws = await connect(url + p.ws_path("v1beta"), additional_headers={"x-goog-api-key": TEST_KEY})
    await ws.send(json.dumps({"setup": setup}))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code, ws.close_reason or ""


@pytest.mark.parametrize(("model", "extra", "field"), [
    ("gemini-3.8-live", {GEN: {"thinkingConfig": {"thinkingLevel": "LOW"}}},
     "generationConfig.thinkingConfig"),
    ("gemini-3.8-live", {GEN: {"thinking_config": {"thinking_budget": 0}}},
     "generationConfig.thinkingConfig"),
    ("gemini-3.8-live", {"proactivity": {"proactiveAudio": False}}, "proactivity.proactiveAudio"),
    ("gemini-3.8-live", {GEN: {"responseModalities": ["TEXT"]}},
     "generationConfig.responseModalities"),
    ("gemini-3.8-live", {GEN: {"enableAffectiveDialog": True}},
     "generationConfig.enableAffectiveDialog"),
    ("gemini-3.8-live-extended-thinking", {GEN: {"thinkingConfig": {"thinkingLevel": "MINIMAL"}}},
     "generationConfig.thinkingConfig.thinkingLevel"),
    ("gemini-3.1-flash-live-preview", {"proactivity": {"proactiveAudio": True}}, "proactivity"),
    ("gemini-3.1-flash-live-preview", {GEN: {"thinkingConfig": {"thinkingBudget": 0}}},
     "generationConfig.thinkingConfig.thinkingBudget"),
    (NATIVE, {"inputAudioTranscription": {"customVocabulary": ["Leeds"]}},
     "inputAudioTranscription.customVocabulary"),
    (NATIVE, {"input_audio_transcription": {"language_codes": ["en"]}},
     "inputAudioTranscription.languageCodes"),
])
def test_what_the_model_rejects_is_closed_with_1007(
        emulator: EmulatorThread, model: str, extra: dict[str, Any], field: str) -> None:
    code, reason = asyncio.run(refused(emulator.url, {"model": "models/" + model.split("/")[-1],
                                                      **extra}))
    assert (code, reason) == (1007, "Request contains an invalid argument.")
    assert emulator.sessions[0].refused == field


@pytest.mark.parametrize("cfg", [
    LiveConfig(),
    LiveConfig(model="gemini-3.8-live-extended-thinking", thinking_level="high",
               custom_vocabulary=("Siobhan",), transcription_languages=("en-GB",),
               proactive_audio=True, compression_trigger_tokens=20000),
    LiveConfig(model=NATIVE, thinking_budget=0, affective_dialog=True, proactive_audio=True),
    LiveConfig(model="gemini-live-2.5-flash-preview", response_modality="TEXT"),
])
def test_every_setup_pttd_builds_for_a_model_is_accepted(
        emulator: EmulatorThread, cfg: LiveConfig) -> None:
    async def main() -> None:
        ws = await open_session(emulator.url, cfg)
        await ws.close()

    asyncio.run(main())
    assert not emulator.sessions[0].refused


def test_3_8_proactivity_true_is_accepted_as_the_service_does(emulator: EmulatorThread) -> None:
    async def main() -> None:
        ws = await connect(emulator.url + p.ws_path("v1beta"),
                           additional_headers={"x-goog-api-key": TEST_KEY})
        await ws.send(json.dumps({"setup": {"model": "models/gemini-3.8-live",
                                            "proactivity": {"proactiveAudio": True}}}))
        assert p.parse_server_frame(await ws.recv()) == [p.SetupComplete()]
        await ws.close()

    asyncio.run(main())


def test_3_8_ends_an_empty_turn_waiting_for_input_and_every_turn_with_idle() -> None:
    async def main(url: str) -> tuple[list[Any], list[Any]]:
        ws = await open_session(url, LiveConfig())
        await speak(ws, b"")
        empty, _ = await read_turn(ws)
        await speak(ws, tone16k(300))
        full, _ = await read_turn(ws)
        await ws.close()
        return empty, full

    with EmulatorThread(pace="burst") as emu:
        empty, full = asyncio.run(main(emu.url))
        sdk_accepts_every_frame(emu)
    assert not any(isinstance(e, p.AudioChunk | p.GenerationComplete) for e in empty)
    assert empty[-1] == p.TurnComplete("NEED_MORE_INPUT", True, "IDLE")
    assert any(isinstance(e, p.AudioChunk) for e in full)
    assert full[-1] == p.TurnComplete(None, False, "IDLE")


def test_a_native_audio_model_answers_an_empty_turn_and_sends_no_status() -> None:
    async def main(url: str) -> list[Any]:
        ws = await open_session(url, LiveConfig(model=NATIVE))
        await speak(ws, b"")
        events, _ = await read_turn(ws)
        await ws.close()
        return events

    with EmulatorThread(pace="burst") as emu:
        events = asyncio.run(main(emu.url))
    assert any(isinstance(e, p.AudioChunk) for e in events)
    assert events[-1] == p.TurnComplete()


async def barge_in(url: str, cfg: LiveConfig) -> list[Any]:
    """Speak, barge into the reply once it plays, speak again: every event until the second
    reply's turnComplete."""
    ws = await open_session(url, cfg)
    await speak(ws, tone16k(2000))
    events: list[Any] = []
    while not any(isinstance(e, p.AudioChunk) for e in events):
        events += p.parse_server_frame(await asyncio.wait_for(ws.recv(), 10))
    await ws.send(p.activity_start())
    await ws.send(p.audio(tone16k(300)))
    await ws.send(p.activity_end())

    def new_reply_done() -> bool:
        heard = [i for i, e in enumerate(events) if isinstance(e, p.InputTranscription)]
        return len(heard) == 2 and isinstance(events[-1], p.TurnComplete)

    while not new_reply_done():
        events += p.parse_server_frame(await asyncio.wait_for(ws.recv(), 10))
    await ws.close()
    return events


@pytest.mark.parametrize(("end", "model", "expected"), [
    ("model", "gemini-3.8-live", [p.Interrupted(), p.TurnComplete(None, False, "IDLE")]),
    ("model", NATIVE, [p.TurnComplete()]),            # a native-audio preview: no interrupted
    ("interrupted", NATIVE, [p.Interrupted(), p.TurnComplete()]),
    ("silent", "gemini-3.8-live", []),
])
def test_how_a_barge_in_ends_the_old_reply(end: str, model: str, expected: list[Any]) -> None:
    with EmulatorThread(pace="realtime", barge_in_end=end) as emu:
        events = asyncio.run(barge_in(emu.url, LiveConfig(model=model)))
        sdk_accepts_every_frame(emu)
    # The old reply's end (if any) comes before anything of the new one.
    ends = [e for e in events if isinstance(e, p.Interrupted | p.TurnComplete)]
    first_new = [i for i, e in enumerate(events) if isinstance(e, p.InputTranscription)][1]
    assert [e for e in events[:first_new] if isinstance(e, p.Interrupted | p.TurnComplete)] \
        == expected
    assert ends[len(expected):] == [ends[-1]] and isinstance(ends[-1], p.TurnComplete)


def test_the_session_closes_at_its_deadline() -> None:
    async def main(url: str) -> tuple[int | None, str, float]:
        ws = await open_session(url, LiveConfig())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        return ws.close_code, ws.close_reason or "", loop.time() - t0

    with EmulatorThread(session_deadline_s=0.3) as emu:
        code, reason, after = asyncio.run(main(emu.url))
    assert (code, reason) == (1011, "Deadline expired")
    assert after >= 0.25
    assert emu.sessions[0].closed_by_server


def test_3_8_sessions_default_to_the_model_s_58_minute_limit() -> None:
    from daemon.live.models import rules_for

    assert rules_for("gemini-3.8-live").session_limit_s == 58 * 60
    assert rules_for(NATIVE).session_limit_s is None


def test_3_8_takes_client_content_with_roles_mid_session() -> None:
    """Context with roles goes in mid-session without a reply; turnComplete: true interrupts
    the reply in progress and answers."""
    async def main(url: str) -> list[Any]:
        ws = await open_session(url, LiveConfig())
        await speak(ws, tone16k(300))
        await read_turn(ws)
        await ws.send(p.client_content([("user", "I moved to Leeds."), ("model", "Noted.")],
                                       turn_complete=False))
        await speak(ws, tone16k(2000))
        events: list[Any] = []
        while not any(isinstance(e, p.AudioChunk) for e in events):
            events += p.parse_server_frame(await asyncio.wait_for(ws.recv(), 10))
        await ws.send(p.client_content([("user", "Where do I live?")], turn_complete=True))
        while sum(isinstance(e, p.TurnComplete) for e in events) < 2:
            events += p.parse_server_frame(await asyncio.wait_for(ws.recv(), 10))
        await ws.close()
        return events

    with EmulatorThread(pace="realtime") as emu:
        events = asyncio.run(main(emu.url))
        sdk_accepts_every_frame(emu)
        history = emu.sessions[0].history
    assert p.Interrupted() in events
    assert {"role": "user", "text": "I moved to Leeds."} in history
    assert {"role": "model", "text": "Noted."} in history
    assert history[-1]["text"] == "You said: Where do I live?"
    assert not emu.sessions[0].closed_by_server
