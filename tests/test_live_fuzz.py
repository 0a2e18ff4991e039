"""Fuzz: arbitrary server frames through a live session over a real WebSocket. The client may
log and reconnect, but never crashes, and afterwards a turn still gets its reply."""

from __future__ import annotations

import asyncio
import json

from fixtures_live import ClientHarness, live_config, tone16k
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.apikey import ApiKey
from daemon.devkit.emulator import EmulatorThread
from daemon.live.protocol import AudioChunk, TurnComplete

KNOWN = ["setupComplete", "serverContent", "toolCall", "toolCallCancellation", "goAway",
         "sessionResumptionUpdate", "usageMetadata", "modelTurn", "parts", "inlineData", "data",
         "mimeType", "turnComplete", "interrupted", "text", "timeLeft", "newHandle"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KNOWN) | st.text(max_size=8), children, max_size=4),
    max_leaves=12)
frames = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(KNOWN), json_values, min_size=1, max_size=3)
      .map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(frames, min_size=1, max_size=5))
def test_random_server_frames_never_crash_a_live_session(
        emulator: EmulatorThread, api_key: ApiKey, batch: list[bytes]) -> None:
    async def main() -> None:
        async with ClientHarness(live_config(emulator.url), api_key) as h:
            await h.ready()
            for frame in batch:
                emulator.inject("raw", data=frame)
            await asyncio.sleep(0.05)
            await h.ready()
            h.events.clear()
            assert h.client.activity_start()
            assert h.client.send_audio(tone16k(200))
            assert h.client.activity_end()
            await h.wait(lambda: bool(h.of(TurnComplete)) and bool(h.of(AudioChunk)), 10)

    asyncio.run(main())
