"""The emulator over real loopback WebSockets: the protocol, echo replies and every fault."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest
from fixtures_live import TEST_KEY, tone16k
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from config import LiveConfig
from daemon.devkit.emulator import EmulatorThread
from daemon.live import protocol as p

HEADERS = {"x-goog-api-key": TEST_KEY}


async def open_session(url: str, cfg: LiveConfig | None = None, *, version: str = "v1beta",
                       query: str = "", headers: dict[str, str] | None = None,
                       handle: str | None = None) -> ClientConnection:
    ws = await connect(url + p.ws_path(version) + query, max_size=None,
                       additional_headers=HEADERS if headers is None else headers)
    await ws.send(p.setup(cfg or LiveConfig(), handle))
    assert p.parse_server_frame(await ws.recv()) == [p.SetupComplete()]
    return ws


async def read_turn(ws: ClientConnection) -> tuple[list[Any], list[bytes | str]]:
    """Events and raw frames up to and including turnComplete."""
    events: list[Any] = []
    raws: list[bytes | str] = []
    while not any(isinstance(e, p.TurnComplete) for e in events):
        raw = await asyncio.wait_for(ws.recv(), 10)
        raws.append(raw)
        events += p.parse_server_frame(raw)
    return events, raws


async def next_handle(ws: ClientConnection) -> str:
    while True:
        for e in p.parse_server_frame(await asyncio.wait_for(ws.recv(), 10)):
            if isinstance(e, p.SessionResumptionUpdate):
                assert e.resumable and e.handle
                return e.handle


async def speak(ws: ClientConnection, pcm: bytes, chunk: int = 640) -> None:
    await ws.send(p.activity_start())
    for i in range(0, len(pcm), chunk):
        await ws.send(p.audio(pcm[i:i + chunk]))
    await ws.send(p.activity_end())


def dominant_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
def test_versions_and_key_in_header_or_query(emulator: EmulatorThread, version: str) -> None:
    async def main() -> None:
        ws = await open_session(emulator.url, version=version)
        await ws.close()
        ws = await open_session(emulator.url, version=version, query=f"?key={TEST_KEY}",
                                headers={})
        await ws.close()
    asyncio.run(main())
    assert [s.version for s in emulator.sessions] == [version, version]


def test_unknown_path_is_404(emulator: EmulatorThread) -> None:
    async def main() -> None:
        with pytest.raises(InvalidStatus) as err:
            await connect(emulator.url + "/ws/google.ai.generativelanguage.v2.Nope",
                          additional_headers=HEADERS)
        assert err.value.response.status_code == 404
    asyncio.run(main())


def test_missing_key_is_refused_like_the_service(emulator: EmulatorThread) -> None:
    async def main() -> None:
        ws = await connect(emulator.url + p.ws_path("v1beta"))
        with pytest.raises(ConnectionClosed) as err:
            await ws.send(p.setup(LiveConfig()))
            await ws.recv()
        assert err.value.rcvd is not None
        assert err.value.rcvd.code == 1008
        assert "unregistered callers" in err.value.rcvd.reason
        assert len(err.value.rcvd.reason.encode()) <= 123
    asyncio.run(main())


def test_wrong_key_is_refused_when_a_key_is_required() -> None:
    async def main(url: str) -> None:
        ws = await connect(url + p.ws_path("v1beta"), additional_headers={"x-goog-api-key": "no"})
        with pytest.raises(ConnectionClosed) as err:
            await ws.recv()
        assert err.value.rcvd is not None and err.value.rcvd.code == 1007
        assert "API key not valid" in err.value.rcvd.reason
        await (await open_session(url)).close()
    with EmulatorThread(api_key=TEST_KEY) as emu:
        asyncio.run(main(emu.url))


@pytest.mark.parametrize("frames", [
    ['{"setup": {"model": 5}}'],
    ['{"setup": {"model": "m", "sessionResumption": {"handle": {}}}}'],
    ['[1]'],
    ["not json"],
    [None, '{"realtimeInput": {"mediaChunks": 5}}'],
    [None, '{"realtimeInput": {"audio": {"data": "*!", "mimeType": "audio/pcm;rate=16000"}}}'],
    [None, '{"realtimeInput": {"text": {"nested": true}}}'],
    [None, '{"clientContent": {"turns": [{"parts": 3}], "turnComplete": true}}'],
    [None, '{"bogus": {}}'],
    [None, '{"realtimeInput": {}, "clientContent": {}}'],
])
def test_bad_client_frames_are_refused_with_1007(emulator: EmulatorThread,
                                                 frames: list[str | None]) -> None:
    async def main() -> None:
        ws = await connect(emulator.url + p.ws_path("v1beta"), additional_headers=HEADERS)
        with pytest.raises(ConnectionClosed) as err:
            for frame in frames:
                await ws.send(p.setup(LiveConfig()) if frame is None else frame)
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert err.value.rcvd is not None and err.value.rcvd.code == 1007
        await (await open_session(emulator.url)).close()    # and the server carries on

    asyncio.run(main())


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


def test_close_reason_is_cut_to_123_bytes(emulator: EmulatorThread) -> None:
    reason = "models/gemini-live-x is not found for API version v1beta, or is not supported " \
             "for bidiGenerateContent. Call ListModels to see the list of available models."

    async def main() -> None:
        ws = await open_session(emulator.url)
        emulator.inject("close", code=1008, reason=reason)
        with pytest.raises(ConnectionClosed) as err:
            while True:
                await ws.recv()
        assert err.value.rcvd is not None and err.value.rcvd.code == 1008
        assert err.value.rcvd.reason == reason.encode()[:123].decode()

    asyncio.run(main())


def test_unknown_model_is_refused_with_1008() -> None:
    async def main(url: str) -> None:
        with pytest.raises(ConnectionClosed) as err:
            await open_session(url, LiveConfig(model="models/gemini-nope"))
        rcvd = err.value.rcvd
        assert rcvd is not None and rcvd.code == 1008
        assert rcvd.reason.startswith("models/gemini-nope is not found for API version v1beta")
        assert len(rcvd.reason.encode()) == 123

    with EmulatorThread(known_models=("models/gemini-ok",)) as emu:
        asyncio.run(main(emu.url))


def test_http_status_at_upgrade_for_the_next_connections(emulator: EmulatorThread) -> None:
    emulator.inject("reject", status=429, count=2)

    async def main() -> None:
        for _ in range(2):
            with pytest.raises(InvalidStatus) as err:
                await connect(emulator.url + p.ws_path("v1beta"), additional_headers=HEADERS)
            assert err.value.response.status_code == 429
        await (await open_session(emulator.url)).close()

    asyncio.run(main())
    assert emulator.emulator.upgrades == [429, 429, 101]


def test_go_away_then_close() -> None:
    async def main(url: str) -> tuple[list[Any], float]:
        ws = await open_session(url)
        t0 = time.monotonic()
        events: list[Any] = []
        with pytest.raises(ConnectionClosed) as err:
            while True:
                events += p.parse_server_frame(await ws.recv())
        assert err.value.rcvd is not None and err.value.rcvd.code == 1000
        return events, time.monotonic() - t0

    with EmulatorThread(go_away_after=0.1, go_away_time_left=0.3) as emu:
        events, lasted = asyncio.run(main(emu.url))
    assert p.GoAway(0.3) in events
    assert lasted >= 0.4 - 0.01


def test_frame_faults_reach_the_client_as_described(emulator: EmulatorThread) -> None:
    async def main() -> tuple[list[bytes | str], list[Any]]:
        ws = await open_session(emulator.url)
        await next_handle(ws)
        for kind in ("malformed", "unknown_only"):
            emulator.inject(kind)
        emulator.inject("oversize", nbytes=1_200_000)
        raws = [await ws.recv() for _ in range(3)]
        for kind, kw in (("bad_base64", {}), ("odd_pcm", {}), ("rate", {"rate": 16000})):
            emulator.inject(kind, **kw)
        await speak(ws, tone16k(400))
        turn: list[Any] = []
        while True:
            raw = await ws.recv()
            try:
                events = p.parse_server_frame(raw)
            except p.ProtocolError as exc:
                turn.append(exc)
                continue
            turn += events
            if any(isinstance(e, p.TurnComplete) for e in events):
                break
        await ws.close()
        return raws, turn

    raws, turn = asyncio.run(main())
    with pytest.raises(p.ProtocolError):
        p.parse_server_frame(raws[0])
    assert p.parse_server_frame(raws[1]) == [p.Unknown(("someFutureField",))]
    assert len(raws[2]) > 2**20
    assert p.parse_server_frame(raws[2]) == [p.AudioChunk(bytes(1_200_000), 24000)]
    chunks = [e for e in turn if isinstance(e, p.AudioChunk)]
    assert isinstance(turn[2], p.ProtocolError) and "base64" in str(turn[2])
    assert len(chunks[0].data) == 1919 and chunks[0].rate == 24000
    assert chunks[1].rate == 16000 and len(chunks[1].data) == 1920
    assert {c.rate for c in chunks[2:]} == {24000}


def test_option_faults_text_frames_and_drip() -> None:
    async def main(url: str) -> tuple[list[bytes | str], float]:
        ws = await open_session(url)
        await speak(ws, tone16k(200))
        raws: list[bytes | str] = []
        stamps = []
        while True:
            raw = await ws.recv()
            raws.append(raw)
            if '"inlineData"' in raw:
                stamps.append(time.monotonic())
            if '"turnComplete"' in raw:
                break
        await ws.close()
        return raws, stamps[-1] - stamps[0]

    with EmulatorThread(pace="burst", text_frames=True, malformed_every=1, unknown_every=1,
                        drip_ms=30) as emu:
        raws, spread = asyncio.run(main(emu.url))
    assert all(isinstance(r, str) for r in raws)
    assert isinstance(p.parse_server_frame(raws[0])[0], p.SessionResumptionUpdate)
    with pytest.raises(p.ProtocolError):
        p.parse_server_frame(raws[1])
    assert p.parse_server_frame(raws[2]) == [p.Unknown(("someFutureField",))]
    assert spread >= 4 * 0.030 - 0.005       # 5 chunks, each held back 30 ms


def test_stall_leaves_pings_unanswered() -> None:
    async def main(url: str, emu: EmulatorThread) -> None:
        ws = await open_session(url)
        await asyncio.wait_for(await ws.ping(), 2)
        emu.inject("stall", seconds=0.6)
        pong = await ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pong), 0.3)
        await asyncio.wait_for(pong, 3)    # answered once the stall is over
        await ws.close()

    with EmulatorThread() as emu:
        asyncio.run(main(emu.url, emu))


def test_unknown_fault_kind_names_the_known_ones(emulator: EmulatorThread) -> None:
    with pytest.raises(ValueError, match=r"known: .*close.*go_away"):
        emulator.inject("earthquake")


def test_pttd_emulator_command_serves_until_interrupted(tmp_path: Any) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "daemon", "emulator", "--port", "0",
                             "--pace", "burst", "--record", str(tmp_path / "r.jsonl")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split("listening on ")[1].split()[0]

        async def main() -> None:
            ws = await open_session(url)
            await speak(ws, tone16k(120))
            events, _ = await read_turn(ws)
            assert sum(len(e.data) for e in events if isinstance(e, p.AudioChunk)) == 5760
            await ws.close()

        asyncio.run(main())
    finally:
        proc.terminate()
        proc.wait(10)
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1 + 1 + 6 + 1
