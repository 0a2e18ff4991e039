"""The reference client: what a user builds from the official Gemini Live quickstart.

google-genai's `client.aio.live.connect`, `send_realtime_input` and `receive()`, the
quickstart's chunk size (1024 frames at 16 kHz up) and its queue-per-direction structure, with
pyalsaaudio opening the same ALSA PCMs pttd uses (the quickstart uses PyAudio, which needs
PortAudio; the device path underneath is the same ALSA). Press/release map to activityStart/
activityEnd, driven through the same control-socket line protocol as pttd, so the bench drives
both the same way. It prints `READY` once the session is set up.

    python -m tests.bench.reference --url URL --capture DEV --playback DEV --socket PATH
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import threading

import alsaaudio
from google import genai
from google.genai import types

CHUNK_SIZE = 1024          # the quickstart's frames per read
SEND_RATE = 16000
RECEIVE_RATE = 24000
MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"


class Reference:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.pressed = False
        self.out_queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=5)
        self.audio_in: asyncio.Queue[bytes] = asyncio.Queue()
        self.session: object = None
        self.turns = 0

    def _client(self) -> genai.Client:
        client = genai.Client(api_key=os.environ.get("GEMINI_API_KEY", "bench-key"),
                              http_options=types.HttpOptions(api_version="v1beta"))
        # Variant B of docs/live-api.md: plain ws:// to the local emulator.
        api = client._api_client
        api._websocket_base_url = lambda *a, **k: self.args.url
        api._websocket_ssl_ctx = {}
        return client

    async def listen_audio(self) -> None:
        pcm = alsaaudio.PCM(alsaaudio.PCM_CAPTURE, device=self.args.capture, rate=SEND_RATE,
                            channels=1, format=alsaaudio.PCM_FORMAT_S16_LE,
                            periodsize=CHUNK_SIZE)
        while True:
            n, data = await asyncio.to_thread(pcm.read)
            if n > 0 and self.pressed:
                await self.out_queue.put(data)

    async def send_realtime(self) -> None:
        while True:
            data = await self.out_queue.get()
            await self.session.send_realtime_input(  # type: ignore[attr-defined]
                audio=types.Blob(data=data, mime_type="audio/pcm;rate=16000"))

    async def receive_audio(self) -> None:
        while True:
            async for response in self.session.receive():  # type: ignore[attr-defined]
                if response.data:
                    self.audio_in.put_nowait(response.data)
            self.turns += 1
            # As the quickstart does: an interruption ends the turn, so stop playback by
            # emptying the queue of audio not yet played.
            while not self.audio_in.empty():
                self.audio_in.get_nowait()

    async def play_audio(self) -> None:
        pcm = alsaaudio.PCM(alsaaudio.PCM_PLAYBACK, device=self.args.playback,
                            rate=RECEIVE_RATE, channels=1, format=alsaaudio.PCM_FORMAT_S16_LE,
                            periodsize=CHUNK_SIZE)
        while True:
            data = await self.audio_in.get()
            await asyncio.to_thread(pcm.write, data)

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode().strip()
        if line == "press":
            self.pressed = True
            await self.session.send_realtime_input(activity_start=types.ActivityStart())  # type: ignore[attr-defined]
        elif line == "release":
            self.pressed = False
            await self.session.send_realtime_input(activity_end=types.ActivityEnd())  # type: ignore[attr-defined]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        writer.write(json.dumps({"ok": True, "state": "pressed" if self.pressed else "idle",
                                 "turns": self.turns, "maxrss_kb": usage.ru_maxrss}).encode()
                     + b"\n")
        await writer.drain()
        writer.close()

    async def run(self) -> None:
        config = types.LiveConnectConfig(
            response_modalities=["AUDIO"],
            realtime_input_config=types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)))
        async with self._client().aio.live.connect(model=MODEL, config=config) as session:
            self.session = session
            server = await asyncio.start_unix_server(self.control, path=self.args.socket)
            print("READY", flush=True)
            async with server, asyncio.TaskGroup() as tg:
                tg.create_task(self.listen_audio())
                tg.create_task(self.send_realtime())
                tg.create_task(self.receive_audio())
                tg.create_task(self.play_audio())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--capture", required=True)
    parser.add_argument("--playback", required=True)
    parser.add_argument("--socket", required=True)
    args = parser.parse_args()
    threading.excepthook = lambda a: os._exit(1)
    try:
        asyncio.run(Reference(args).run())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
