"""The emulator's faults over real loopback WebSockets: closes, goAway, malformed and unknown
frames, text frames, slow drip and stalls, each reaching the client as described."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fixtures_emulator import next_handle, open_session, speak
from fixtures_live import tone16k
from websockets.exceptions import ConnectionClosed

from daemon.devkit.emulator import EmulatorThread
from daemon.live import protocol as p


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
