"""LiveClient against the emulator over loopback: a warm session before the first press, sends
that go out at once or not at all, the context on fresh sessions, and the endpoint rule."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from fixtures_live import ClientHarness, live_config, tone16k
from fixtures_live_client import turn

from config import ConfigError, ContextTurn
from config.apikey import ApiKey
from daemon.devkit.emulator import EmulatorThread
from daemon.live import protocol as p
from daemon.live.client import LiveClient


def test_warm_session_is_ready_before_the_first_press(emulator: EmulatorThread,
                                                      api_key: ApiKey) -> None:
    async def main() -> list[Any]:
        async with ClientHarness(live_config(emulator.url), api_key) as h:
            await h.ready()
            # Ready means set up and idle: nothing but setup was sent yet.
            assert [list(f) for _, f in emulator.frames] == [["setup"]]
            assert h.states == ["connecting", "ready"]
            return await turn(h, tone16k(500))

    events = asyncio.run(main())
    audio = b"".join(e.data for e in events if isinstance(e, p.AudioChunk))
    assert len(audio) == 24000                 # 500 ms echoed at 24 kHz
    assert [list(f["realtimeInput"]) for _, f in emulator.frames[1:]] == \
        [["activityStart"]] + [["audio"]] * 25 + [["activityEnd"]]
    assert emulator.sessions[0].close_code == 1000    # close() ends cleanly


def test_every_send_without_a_session_returns_false_and_sends_nothing(api_key: ApiKey) -> None:
    client = LiveClient(live_config("ws://127.0.0.1:9"), api_key, on_event=lambda e: None)
    assert not client.activity_start()
    assert not client.send_audio(b"\0\0")
    assert not client.activity_end()
    assert not client.audio_stream_end()
    assert not client.send_tool_response([p.FunctionResponse("1", "f", {})])
    assert not client.send_client_content([("user", "hi")], turn_complete=True)


def test_sends_go_out_at_once_and_a_short_stall_is_buffered_not_awaited(
        emulator: EmulatorThread, api_key: ApiKey) -> None:
    """One synchronous path: while the server stops reading for a moment, every frame is
    accepted at once, and the server gets all of them, in order, once it reads again."""
    frame = tone16k(200)

    async def main() -> None:
        async with ClientHarness(live_config(emulator.url), api_key) as h:
            await h.ready()
            assert h.client.activity_start()
            assert h.client.send_audio(frame)
            assert h.client.activity_end()
            await h.wait(lambda: bool(h.of(p.TurnComplete)))
            emulator.inject("stall", seconds=1.5)           # the server stops reading
            await asyncio.sleep(0.1)
            assert h.client.activity_start()
            for _ in range(20):
                assert h.client.send_audio(frame)
            assert h.client.activity_end()
            await h.wait(lambda: len(h.of(p.TurnComplete)) == 2, 20)
            assert h.states == ["connecting", "ready"]

    asyncio.run(main())
    kinds = [list(f["realtimeInput"]) for _, f in emulator.frames[1:]]
    assert kinds == ([["activityStart"], ["audio"], ["activityEnd"], ["activityStart"]]
                     + [["audio"]] * 20 + [["activityEnd"]])


def test_ws_to_a_remote_host_is_refused(api_key: ApiKey) -> None:
    with pytest.raises(ConfigError, match="wss://"):
        LiveClient(live_config("ws://example.com"), api_key, on_event=lambda e: None)


def test_context_goes_to_fresh_sessions_only(emulator: EmulatorThread, api_key: ApiKey) -> None:
    cfg = live_config(emulator.url, context=(ContextTurn("user", "I am Sam."),))

    async def main() -> None:
        async with ClientHarness(cfg, api_key) as h:
            await h.ready()
            await h.wait(lambda: len(h.of(p.SessionResumptionUpdate)) == 2)  # after the context
            emulator.inject("close", code=1011)
            await h.wait(lambda: h.client.connections == 2 and h.client.state == "ready")

    asyncio.run(main())
    first, second = emulator.sessions[:2]
    assert first.history == [{"role": "user", "text": "I am Sam."}]
    assert second.resumed_from is not None
    assert second.history == first.history      # from the handle, not sent again
    assert sum("clientContent" in f for _, f in emulator.frames) == 1


def test_server_turn_detection_ends_the_turn_with_audio_stream_end(
        emulator: EmulatorThread, api_key: ApiKey) -> None:
    async def main() -> list[Any]:
        async with ClientHarness(live_config(emulator.url, turn_detection="server"),
                                 api_key) as h:
            await h.ready()
            assert h.client.send_audio(tone16k(300))
            assert h.client.audio_stream_end()
            await h.wait(lambda: bool(h.of(p.TurnComplete)))
            return h.events

    events = asyncio.run(main())
    assert sum(len(e.data) for e in events if isinstance(e, p.AudioChunk)) == 14400
    assert [list(f["realtimeInput"]) for _, f in emulator.frames[1:]] == [["audio"],
                                                                         ["audioStreamEnd"]]


def test_fragmented_server_messages_are_reassembled(api_key: ApiKey) -> None:
    """RFC 6455 lets a server split a message into frames; each still arrives as one event."""
    from websockets.asyncio.server import ServerConnection, serve

    reply = json.dumps({"serverContent": {"modelTurn": {"parts": [{"inlineData": {
        "mimeType": "audio/pcm;rate=24000", "data": base64.b64encode(b"\1\0" * 600).decode()}}]}}})

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send([b'{"setupComp', b'lete":', b"{}}"])
        await ws.send([reply[:100], reply[100:700], reply[700:]])
        await ws.wait_closed()

    async def main() -> list[Any]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with ClientHarness(live_config(f"ws://127.0.0.1:{port}"), api_key) as h:
                await h.wait(lambda: bool(h.of(p.AudioChunk)))
                return h.events

    events = asyncio.run(main())
    assert events == [p.AudioChunk(b"\1\0" * 600, 24000)]
