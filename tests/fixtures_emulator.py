"""Helpers for the emulator tests: a raw WebSocket session set up against it, one turn read
or spoken, a resumption handle awaited, and the pitch of a reply."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fixtures_live import TEST_KEY
from websockets.asyncio.client import ClientConnection, connect

from config import LiveConfig
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
