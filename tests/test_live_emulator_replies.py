"""The emulator's replies over real loopback WebSockets: echo turns in order and in time,
barge-in, text sessions, resumption that carries the history, and the frame record."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from fixtures_emulator import dominant_hz, next_handle, open_session, read_turn, speak
from fixtures_live import tone16k
from websockets.exceptions import ConnectionClosed

from config import LiveConfig
from daemon.devkit.emulator import EmulatorThread
from daemon.live import protocol as p


def test_echo_turn_order_content_and_chunking(emulator: EmulatorThread) -> None:
    pcm = tone16k(1000, hz=300)

    async def main() -> tuple[list[Any], list[bytes | str], str]:
        ws = await open_session(emulator.url)
        await next_handle(ws)
        await speak(ws, pcm)
        events, raws = await read_turn(ws)
        handle = await next_handle(ws)
        await ws.close()
        return events, raws, handle

    events, raws, handle = asyncio.run(main())
    assert all(isinstance(r, bytes) for r in raws)           # binary frames, as the service
    kinds = [type(e).__name__ for e in events]
    first_audio = kinds.index("AudioChunk")
    assert kinds[:first_audio] == ["InputTranscription", "OutputTranscription"]
    assert set(kinds[first_audio:-3]) == {"AudioChunk"}
    assert kinds[-3:] == ["GenerationComplete", "UsageMetadata", "TurnComplete"]
    assert b'"turnComplete":true' in raws[-1] and b'"usageMetadata"' in raws[-1]
    assert events[0] == p.InputTranscription("<1000 ms of audio>", True)
    chunks = [e for e in events if isinstance(e, p.AudioChunk)]
    assert {c.rate for c in chunks} == {24000}
    assert all(len(c.data) == 1920 for c in chunks[:-1])     # 40 ms at 24 kHz
    reply = b"".join(c.data for c in chunks)
    assert abs(len(reply) - 48000) <= 2 * 48                   # 1 s at 24 kHz, within 1 ms
    assert abs(dominant_hz(reply, 24000) - 300) < 3             # the user's own tone, resampled
    usage = events[-2]
    assert usage.total_tokens == usage.prompt_tokens + usage.response_tokens > 0
    assert emulator.emulator.handles[handle][-1]["role"] == "model"


def test_realtime_pace_spreads_the_reply_over_its_duration() -> None:
    async def main(url: str) -> float:
        ws = await open_session(url)
        await speak(ws, tone16k(600))
        stamps = []
        while True:
            events = p.parse_server_frame(await ws.recv())
            if any(isinstance(e, p.AudioChunk) for e in events):
                stamps.append(time.monotonic())
            if any(isinstance(e, p.TurnComplete) for e in events):
                break
        await ws.close()
        return stamps[-1] - stamps[0]

    with EmulatorThread(pace="realtime") as emu:
        spread = asyncio.run(main(emu.url))
    assert spread >= 0.56 - 0.04 - 0.005   # 15 chunks of 40 ms: the last leaves 560 ms in


def test_reply_max_ms_cuts_the_echo() -> None:
    async def main(url: str) -> bytes:
        ws = await open_session(url)
        await speak(ws, tone16k(1000, hz=300))
        events, _ = await read_turn(ws)
        await ws.close()
        return b"".join(e.data for e in events if isinstance(e, p.AudioChunk))

    with EmulatorThread(pace="burst", reply_max_ms=250) as emu:
        reply = asyncio.run(main(emu.url))
        sent = list(emu.emulator.audio_sent)
    assert len(reply) == 250 * 48
    assert abs(dominant_hz(reply, 24000) - 300) < 5
    assert b"".join(chunk for _, chunk in sent) == reply
    assert [t for t, _ in sent] == sorted(t for t, _ in sent)


def test_barge_in_interrupts_without_generation_complete() -> None:
    async def main(url: str) -> list[Any]:
        ws = await open_session(url)
        await speak(ws, tone16k(2000))
        events: list[Any] = []
        while not any(isinstance(e, p.AudioChunk) for e in events):
            events += p.parse_server_frame(await ws.recv())
        await ws.send(p.activity_start())
        while not any(isinstance(e, p.TurnComplete) for e in events):
            events += p.parse_server_frame(await ws.recv())
        await ws.close()
        return events

    with EmulatorThread(pace="realtime") as emu:
        events = asyncio.run(main(emu.url))
        history = emu.sessions[0].history
    tail = [type(e).__name__ for e in events if not isinstance(e, p.AudioChunk)][-2:]
    assert tail == ["Interrupted", "TurnComplete"]
    assert not any(isinstance(e, p.GenerationComplete) for e in events)
    assert sum(len(e.data) for e in events if isinstance(e, p.AudioChunk)) < 96000
    assert history[-1] == {"role": "model", "interrupted": True}


def test_text_session_gets_text_and_context_without_reply(emulator: EmulatorThread) -> None:
    async def main() -> list[Any]:
        ws = await open_session(emulator.url, LiveConfig(model="gemini-live-2.5-flash-preview",
                                                         response_modality="TEXT"))
        await next_handle(ws)
        await ws.send(p.client_content([("user", "My name is Sam.")], turn_complete=False))
        await ws.send(p.text("what is my name"))
        events, _ = await read_turn(ws)
        await ws.close()
        return events

    events = asyncio.run(main())
    assert not any(isinstance(e, p.AudioChunk) for e in events)
    assert "".join(e.text for e in events if isinstance(e, p.TextPart)) == \
        "You said: what is my name"
    history = emulator.sessions[0].history
    assert history[0] == {"role": "user", "text": "My name is Sam."}
    assert history[1] == {"role": "user", "text": "what is my name"}


def test_resumption_handles_carry_the_history(emulator: EmulatorThread) -> None:
    async def main() -> None:
        ws = await open_session(emulator.url)
        await next_handle(ws)
        await speak(ws, tone16k(200))
        await read_turn(ws)
        handle = await next_handle(ws)
        await ws.close()
        ws = await open_session(emulator.url, handle=handle)
        await speak(ws, tone16k(400))
        await read_turn(ws)
        await ws.close()
        with pytest.raises(ConnectionClosed) as err:
            await open_session(emulator.url, handle="never-issued")
        assert err.value.rcvd is not None and err.value.rcvd.code == 1007

    asyncio.run(main())
    first, second = emulator.sessions[:2]
    assert second.resumed_from is not None
    assert [t.get("audio_ms") for t in second.history] == [200, 200, 400, 400]
    assert len(first.history) == 2


def test_record_file_has_every_client_frame(tmp_path: Any) -> None:
    record = tmp_path / "frames.jsonl"

    async def main(url: str) -> None:
        ws = await open_session(url)
        await speak(ws, tone16k(100))
        await read_turn(ws)
        await ws.close()

    with EmulatorThread(pace="burst", record=str(record)) as emu:
        asyncio.run(main(emu.url))
    frames = [f for _, f in emu.frames]      # still readable once the emulator has stopped
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == frames
    assert list(lines[0]) == ["setup"] and lines[1] == {"realtimeInput": {"activityStart": {}}}
    assert len(lines) == 1 + 1 + 5 + 1   # setup, start, 100 ms in 20 ms chunks, end
