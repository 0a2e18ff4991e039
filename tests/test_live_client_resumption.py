"""LiveClient keeps one conversation across connections: resumption after a close or a stall,
goAway switch-over between turns, keepalive, and a fresh session when a handle is refused."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fixtures_live import ClientHarness, live_config, tone16k
from fixtures_live_client import turn

from config import ContextTurn
from config.apikey import ApiKey
from daemon.devkit.emulator import EmulatorThread
from daemon.live import protocol as p


def test_a_stalled_connection_is_dropped_and_resumed_not_waited_on(
        emulator: EmulatorThread, api_key: ApiKey, caplog: pytest.LogCaptureFixture) -> None:
    """The server stops reading for longer than the write buffer's high-water mark lasts: sends
    start returning False (nothing queued behind a dead socket) and the session is resumed on a
    new connection."""
    frame = tone16k(200)

    async def main() -> int:
        async with ClientHarness(live_config(emulator.url), api_key) as h:
            await h.ready()
            await h.wait(lambda: h.client.handle is not None)
            emulator.inject("stall", seconds=30)
            await asyncio.sleep(0.1)
            assert h.client.activity_start()
            sent = 0
            while sent < 5000 and h.client.send_audio(frame):
                sent += 1
            assert not h.client.send_audio(frame)
            await h.wait(lambda: h.client.connections == 2 and h.client.state == "ready", 10)
            return sent

    sent = asyncio.run(main())
    assert sent < 5000, "the write buffer passed its high-water mark but sends kept succeeding"
    assert emulator.sessions[1].resumed_from is not None
    assert any("stalled" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


@pytest.mark.parametrize("code", [1011, 1006])
def test_resumption_across_a_server_close_keeps_the_conversation(
        emulator: EmulatorThread, api_key: ApiKey, code: int) -> None:
    async def main() -> ClientHarness:
        async with ClientHarness(live_config(emulator.url), api_key) as h:
            await h.ready()
            await turn(h, tone16k(200))
            await h.wait(lambda: emulator.sessions[0].history[-1]["role"] == "model"
                         and h.of(p.SessionResumptionUpdate)[-1].handle in
                         emulator.emulator.handles
                         and len(emulator.emulator.handles[h.client.handle]) == 2)
            emulator.inject("close", code=code, reason="Internal error occurred.")
            await h.wait(lambda: h.client.connections == 2 and h.client.state == "ready")
            await turn(h, tone16k(400))
            return h

    h = asyncio.run(main())
    assert h.states == ["connecting", "ready", "connecting", "offline", "connecting", "ready",
                        "offline"]
    second = emulator.sessions[1]
    assert second.resumed_from is not None
    assert [t.get("audio_ms") for t in second.history] == [200, 200, 400, 400]


def test_losing_the_session_mid_reply_is_reported(api_key: ApiKey) -> None:
    async def main(emu: EmulatorThread) -> ClientHarness:
        # reconnect_min_s keeps the client offline long enough to try sending meanwhile.
        async with ClientHarness(live_config(emu.url, reconnect_min_s=0.4), api_key) as h:
            await h.ready()
            emu.inject("close", code=1011, mid_reply=True)
            assert h.client.activity_start()
            assert h.client.send_audio(tone16k(400))
            assert h.client.activity_end()
            await h.wait(lambda: h.client.state != "ready")
            assert not h.of(p.TurnComplete)
            assert not h.client.send_audio(b"\0\0")
            await h.wait(lambda: h.client.state == "ready")
            return h

    with EmulatorThread(pace="realtime") as emu:
        h = asyncio.run(main(emu))
    assert h.states[:3] == ["connecting", "ready", "connecting"]
    assert len(h.of(p.AudioChunk)) == 5        # half of the 10 chunks, then the close


def test_go_away_switches_over_between_turns_without_losing_one(api_key: ApiKey) -> None:
    """goAway arrives while the user is speaking: the turn finishes on the old session, and the
    replacement is opened with a handle that already holds that turn."""

    async def main(emu: EmulatorThread) -> ClientHarness:
        async with ClientHarness(live_config(emu.url), api_key) as h:
            await h.ready()
            await turn(h, tone16k(200))
            assert h.client.activity_start()
            assert h.client.send_audio(tone16k(100))
            emu.inject("go_away", time_left_s=3.0)
            await h.wait(lambda: bool(h.of(p.GoAway)))
            await asyncio.sleep(0.2)          # the user is still speaking
            assert h.client.send_audio(tone16k(200))
            assert h.client.activity_end()
            await h.wait(lambda: len(h.of(p.TurnComplete)) == 2)
            await h.wait(lambda: any(s.resumed_from and len(s.history) == 4 and s.ready
                                     for s in emu.sessions) and emu.sessions[0].closed)
            await turn(h, tone16k(100))
            return h

    with EmulatorThread(pace="burst") as emu:
        h = asyncio.run(main(emu))
        sessions = emu.sessions
    assert h.states == ["connecting", "ready", "offline"]      # never lost
    old = sessions[0]
    assert old.close_code == 1000 and not old.closed_by_server  # closed by the client, in time
    assert len(old.history) == 4
    current = [s for s in sessions if s.resumed_from and len(s.history) == 6]
    assert len(current) == 1
    assert [t.get("audio_ms") for t in current[0].history] == [200, 200, 300, 300, 100, 100]


def test_go_away_while_idle_switches_at_once(api_key: ApiKey) -> None:
    async def main(emu: EmulatorThread) -> ClientHarness:
        async with ClientHarness(live_config(emu.url), api_key) as h:
            await h.ready()
            await turn(h, tone16k(100))
            await h.wait(lambda: len(h.of(p.SessionResumptionUpdate)) >= 2)
            emu.inject("go_away", time_left_s=5.0)
            await h.wait(lambda: emu.sessions[0].closed)
            await turn(h, tone16k(100))
            return h

    with EmulatorThread(pace="burst") as emu:
        h = asyncio.run(main(emu))
        sessions = emu.sessions
    assert h.states == ["connecting", "ready", "offline"]
    assert len(sessions) == 2 and sessions[0].close_code == 1000
    assert not sessions[0].closed_by_server
    assert [t.get("audio_ms") for t in sessions[1].history] == [100, 100, 100, 100]


def test_keepalive_tolerates_slow_pongs_and_replaces_a_dead_session(
        emulator: EmulatorThread, api_key: ApiKey) -> None:
    # Below the config's bounds to keep the test short; LiveConfig itself does not validate.
    cfg = live_config(emulator.url, keepalive_interval_s=0.5, keepalive_timeout_s=1.5)

    async def main() -> ClientHarness:
        async with ClientHarness(cfg, api_key) as h:
            await h.ready()
            emulator.inject("stall", seconds=0.7)     # a pong late, within the timeout
            await asyncio.sleep(1.2)
            assert h.client.connections == 1 and h.states == ["connecting", "ready"]
            emulator.inject("stall", seconds=30)      # no pong at all
            await h.wait(lambda: h.client.connections == 2 and h.client.state == "ready", 8)
            return h

    h = asyncio.run(main())
    assert h.states[:3] == ["connecting", "ready", "connecting"]


def test_a_refused_resumption_falls_back_to_a_fresh_session_at_once(
        emulator: EmulatorThread, api_key: ApiKey, caplog: pytest.LogCaptureFixture) -> None:
    """The service forgot the session (1007 on the stale handle): a fresh one, with the
    configured context, is opened without a back-off, and the next press works."""
    cfg = live_config(emulator.url, context=(ContextTurn("user", "I am Sam."),))
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    async def main() -> None:
        async with ClientHarness(cfg, api_key, sleep=sleep) as h:
            await h.ready()
            await turn(h, tone16k(100))
            await h.wait(lambda: h.client.handle in emulator.emulator.handles)
            emulator.call(lambda e: e.handles.clear())
            emulator.inject("close", code=1011)
            await h.wait(lambda: h.client.connections == 3 and h.client.state == "ready")
            await turn(h, tone16k(200))

    asyncio.run(main())
    assert len(delays) == 1                       # after the 1011 only, not after the refusal
    refused, fresh = emulator.sessions[1:]
    assert refused.close_code == 1007
    assert fresh.resumed_from is None
    assert fresh.history[0] == {"role": "user", "text": "I am Sam."}
    assert [t.get("audio_ms") for t in fresh.history[1:]] == [200, 200]
    assert any("could not resume the conversation" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)
