"""The emulator over real loopback WebSockets: whom it serves and how it refuses the rest (paths,
keys, models, bad frames, HTTP statuses), and the `pttd emulator` command."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from fixtures_emulator import HEADERS, open_session, read_turn, speak
from fixtures_live import TEST_KEY, tone16k
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from config import LiveConfig
from daemon.devkit.emulator import EmulatorThread
from daemon.live import protocol as p


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
