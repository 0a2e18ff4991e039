"""LiveClient's failures: classified, logged once, retried with backoff (on a fake clock), bad
frames survived, and an API key that never leaks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from fixtures_live import TEST_KEY, ClientHarness, live_config, tone16k
from fixtures_live_client import run_failing, turn

from config.apikey import ApiKey
from daemon.devkit.emulator import EmulatorThread
from daemon.live import protocol as p
from daemon.live.failures import classify_close
from hw.backoff import Backoff


def test_transient_backoff_doubles_up_to_the_ceiling(api_key: ApiKey) -> None:
    with EmulatorThread(reject_status=503) as emu:
        fake, client = asyncio.run(run_failing(emu.url, api_key, 8, reconnect_min_s=0.5,
                                               reconnect_max_s=10.0))
        upgrades = emu.emulator.upgrades
    # rand() = 0.5 puts every delay at 3/4 of its base.
    assert fake.delays == [0.375, 0.75, 1.5, 3.0, 6.0, 7.5, 7.5, 7.5]
    assert len(upgrades) == 8 and set(upgrades) == {503}      # one attempt per delay
    assert client.state == "offline"


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
