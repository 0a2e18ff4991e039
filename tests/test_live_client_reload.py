"""LiveClient applies a reloaded [live] section: new settings renew the session between turns,
and a new context goes in session where the model takes roles."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from fixtures_live import ClientHarness, live_config, tone16k
from fixtures_live_client import turn

from config import ContextTurn
from config.apikey import ApiKey
from daemon.devkit.emulator import EmulatorThread
from daemon.live.client import LiveClient


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
