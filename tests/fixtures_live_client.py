"""Helpers for the LiveClient tests: one press-to-talk turn, and a client run against a
failing server on a fake clock that records each backoff delay."""

from __future__ import annotations

import asyncio
from typing import Any

from fixtures_live import ClientHarness, live_config

from config.apikey import ApiKey
from daemon.live import protocol as p
from daemon.live.client import LiveClient


async def turn(h: ClientHarness, pcm: bytes) -> list[Any]:
    """One press-to-talk turn; the events it produced."""
    start = len(h.events)
    assert h.client.activity_start()
    for i in range(0, len(pcm), 640):
        assert h.client.send_audio(pcm[i:i + 640])
    assert h.client.activity_end()
    await h.wait(lambda: any(isinstance(e, p.TurnComplete) for e in h.events[start:]))
    return h.events[start:]


class FakeSleep:
    """Records each backoff delay instead of sleeping; stops the client after `limit`."""

    def __init__(self, limit: int) -> None:
        self.delays: list[float] = []
        self.limit = limit
        self.client: LiveClient | None = None

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) >= self.limit and self.client is not None:
            await self.client.close()


async def run_failing(url: str, key: ApiKey, sleeps: int, **cfg: Any) -> tuple[FakeSleep,
                                                                               LiveClient]:
    fake = FakeSleep(sleeps)
    client = LiveClient(live_config(url, **cfg), key, on_event=lambda e: None, sleep=fake,
                        rand=lambda: 0.5)
    fake.client = client
    async with asyncio.timeout(20):
        await client.run()
    return fake, client
