"""LiveClient against the emulator over loopback: warm session, resumption, goAway switch-over,
classified failures with backoff (on a fake clock), and an API key that never leaks."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import replace
from typing import Any

import pytest
from fixtures_live import TEST_KEY, ClientHarness, live_config, tone16k

from config import ConfigError, ContextTurn
from config.apikey import ApiKey
from daemon.devkit.emulator import EmulatorThread
from daemon.live import protocol as p
from daemon.live.client import LiveClient
from daemon.live.failures import Backoff, classify_close


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


def test_transient_backoff_doubles_up_to_the_ceiling(api_key: ApiKey) -> None:
    with EmulatorThread(reject_status=503) as emu:
        fake, client = asyncio.run(run_failing(emu.url, api_key, 8, reconnect_min_s=0.5,
                                               reconnect_max_s=10.0))
        upgrades = emu.emulator.upgrades
    # rand() = 0.5 puts every delay at 3/4 of its base.
    assert fake.delays == [0.375, 0.75, 1.5, 3.0, 6.0, 7.5, 7.5, 7.5]
    assert len(upgrades) == 8 and set(upgrades) == {503}      # one attempt per delay
    assert client.state == "offline"


def test_reloaded_settings_renew_the_session_between_turns(emulator: EmulatorThread,
                                                           api_key: ApiKey) -> None:
    cfg = live_config(emulator.url)

    async def main() -> ClientHarness:
        async with ClientHarness(cfg, api_key) as h:
            await h.ready()
            await turn(h, tone16k(100))
            h.client.update_config(replace(cfg, reconnect_max_s=2.0))   # not in the setup
            await asyncio.sleep(0.1)
            assert h.client.connections == 1
            assert h.client.activity_start()
            h.client.update_config(replace(cfg, voice="Puck"))
            await asyncio.sleep(0.1)
            assert h.client.connections == 1             # not while the user speaks
            assert h.client.send_audio(tone16k(100))
            assert h.client.activity_end()
            await h.wait(lambda: emulator.sessions[0].closed)
            await turn(h, tone16k(100))
            return h

    h = asyncio.run(main())
    assert h.states == ["connecting", "ready", "offline"]
    old, new = emulator.sessions
    assert not old.closed_by_server
    voice = new.setup["generationConfig"]["speechConfig"]["voiceConfig"]
    assert voice["prebuiltVoiceConfig"]["voiceName"] == "Puck"
    assert [t.get("audio_ms") for t in new.history] == [100] * 6
    assert "api_key_file" in LiveClient.RESTART_KEYS


@pytest.mark.parametrize(("status", "first_delay"), [
    (400, 45.0), (404, 45.0), (401, 90.0), (403, 90.0), (429, 7.5), (500, 0.0375)])
def test_http_status_at_the_upgrade_sets_the_retry_floor(api_key: ApiKey, status: int,
                                                         first_delay: float) -> None:
    with EmulatorThread(reject_status=status) as emu:
        fake, _ = asyncio.run(run_failing(emu.url, api_key, 1))
    assert fake.delays == [pytest.approx(first_delay)]


def test_a_request_refused_mid_session_is_logged_and_resumed_quickly(
        emulator: EmulatorThread, api_key: ApiKey, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with ClientHarness(live_config(emulator.url), api_key) as h:
            await h.ready()
            emulator.inject("close", code=1008,
                            reason="Operation is not implemented, or supported, or enabled.")
            await h.wait(lambda: h.client.connections == 2 and h.client.state == "ready")

    asyncio.run(main())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and "ended the session over a request (close 1008" in errors[0]
    assert emulator.sessions[1].resumed_from is not None


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


def test_backoff_jitter_stays_within_half_to_full() -> None:
    draws = iter([0.0, 0.999, 0.3])
    b = Backoff(1.0, 4.0, rand=lambda: next(draws))
    assert [b.next(), b.next(), b.next()] == [0.5, pytest.approx(1.999), pytest.approx(2.6)]
    b.reset()
    assert b.attempt == 0


def test_rejected_key_logs_one_line_and_backs_off_to_minutes(
        api_key: ApiKey, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with EmulatorThread(reject_status=403) as emu:
        fake, _ = asyncio.run(run_failing(emu.url, api_key, 5))
        attempts = len(emu.emulator.upgrades)
    assert fake.delays == [90.0, 180.0, 360.0, 720.0, 1350.0]
    assert attempts == 5
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert "rejected the API key from test fixture (HTTP 403" in errors[0].getMessage()


def test_unknown_model_logs_one_line_naming_it_and_retries_slowly(
        api_key: ApiKey, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with EmulatorThread(known_models=("models/gemini-ok",)) as emu:
        fake, _ = asyncio.run(run_failing(emu.url, api_key, 3, model="models/gemini-nope"))
        attempts = len(emu.sessions)
    assert fake.delays == [45.0, 90.0, 180.0]
    assert attempts == 3
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    line = errors[0].getMessage()
    assert 'model = "models/gemini-nope"' in line and "close 1008" in line
    assert "not found for API version v1beta" in line


def test_missing_setup_complete_times_out_as_transient(
        emulator: EmulatorThread, api_key: ApiKey, caplog: pytest.LogCaptureFixture) -> None:
    emulator.inject("slow_setup", seconds=3.0)
    fake, _ = asyncio.run(run_failing(emulator.url, api_key, 1, setup_timeout_s=1.0))
    assert fake.delays == [pytest.approx(0.0375)]
    assert any("no setupComplete in time" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


def test_bad_frames_are_logged_and_survived(emulator: EmulatorThread, api_key: ApiKey,
                                            caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[Any]:
        async with ClientHarness(live_config(emulator.url), api_key) as h:
            await h.ready()
            for kind in ("malformed", "unknown_only"):
                emulator.inject(kind)
            emulator.inject("oversize", nbytes=1_400_000)
            emulator.inject("bad_base64")
            await h.wait(lambda: bool(h.of(p.Unknown)) and any(
                len(e.data) == 1_400_000 for e in h.of(p.AudioChunk)))
            events = await turn(h, tone16k(200))
            assert h.states == ["connecting", "ready"]
            return events

    events = asyncio.run(main())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "not JSON" in warnings[0] and "base64" in warnings[1]
    assert len(b"".join(e.data for e in events if isinstance(e, p.AudioChunk))) == 9600 - 1920


def test_the_key_never_reaches_logs_urls_or_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = ApiKey("test", TEST_KEY)
    texts: list[str] = []

    async def main(emu: EmulatorThread) -> None:
        async with ClientHarness(live_config(emu.url, reconnect_min_s=5.0,
                                             reconnect_max_s=5.0), key) as h:
            await h.ready()
            await turn(h, tone16k(100))
            emu.inject("close", code=1008, reason="Operation is not implemented")
            await h.wait(lambda: h.client.state != "ready")
            assert not h.client.send_audio(b"\0\0")
            texts.append(h.client.problem)
            texts.append(h.client.url)
        emu.inject("reject", status=403, count=1)
        await run_failing(emu.url, key, 1)

    with EmulatorThread() as emu:
        asyncio.run(main(emu))
        paths = [s.ws.request.path for s in emu.sessions]
    assert len(caplog.records) >= 10 and texts
    for record in caplog.records:
        assert TEST_KEY not in record.getMessage()
        assert TEST_KEY not in (record.exc_text or "")
    assert all(TEST_KEY not in t for t in texts)
    assert paths and all("key" not in path for path in paths)


@pytest.mark.parametrize(("code", "reason", "kind"), [
    (1011, "Internal error occurred.", "transient"),
    (1006, "", "transient"),
    (1000, "", "transient"),
    (1007, "Request contains an invalid argument.", "config"),
    (1008, "models/x is not found for API version v1beta", "config"),
    (1007, "API key not valid. Please pass a valid API key.", "auth"),
    (1008, "Method doesn't allow unregistered callers (callers without established", "auth"),
    (1011, "Request trace id: 1, [ORIGINAL ERROR] generic::resource_exhausted: RESOURCE_EX",
     "quota"),
])
def test_close_classification(code: int, reason: str, kind: str) -> None:
    assert classify_close(code, reason).kind == kind


@pytest.mark.parametrize(("model", "in_session"), [("models/gemini-3.8-live", True),
                                                   ("models/gemini-3.1-flash-live-preview", False)])
def test_a_reloaded_context_goes_in_session_where_the_model_takes_roles(
        emulator: EmulatorThread, api_key: ApiKey, model: str, in_session: bool) -> None:
    cfg = live_config(emulator.url, model=model)
    context = (ContextTurn("user", "I am Sam."), ContextTurn("model", "Hello Sam."))

    async def main() -> None:
        async with ClientHarness(cfg, api_key) as h:
            await h.ready()
            await turn(h, tone16k(100))
            h.client.update_config(replace(cfg, context=context))
            await turn(h, tone16k(100))
            assert h.client.connections == 1          # never a new session for the context

    asyncio.run(main())
    [session] = emulator.sessions
    sent = [f["clientContent"] for _, f in emulator.frames if "clientContent" in f]
    if in_session:
        assert sent == [{"turns": [{"role": "user", "parts": [{"text": "I am Sam."}]},
                                   {"role": "model", "parts": [{"text": "Hello Sam."}]}],
                         "turnComplete": False}]
        assert session.history[2:4] == [{"role": "user", "text": "I am Sam."},
                                         {"role": "model", "text": "Hello Sam."}]
    else:
        assert sent == []
    assert [t.get("audio_ms") for t in session.history if "audio_ms" in t] == [100] * 4


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
