"""`pttd demo`: the real daemon pipeline on a machine with no Pi, no sound card and no key.

A PulseAudio null sink stands in for the sound card (reached through real ALSA PCMs), the local
emulator for the Live API, synthetic speech for the user and gpiozero's mock pins for the button.
The daemon itself is the real `App`, running in this process so the demo can press its button.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from daemon.devkit import demo_tools

PHRASES = (
    "What is the weather like in Leeds today?",
    "Set a timer for ten minutes, please.",
    "Tell me a short joke about penguins.",
    "How far away is the moon?",
)
MIC_RATE = 16000
REPLY_RATE = 24000
LEAD_S = 1.5          # silence before the first phrase
GAP_S = 1.0           # silence after each phrase, before the reply time
PRESS_EARLY_S = 0.15  # people press a moment before they speak (the pre-roll covers it)
RELEASE_LATE_S = 0.3
TURN_TIMEOUT_S = 60.0


def _say(step: int, total: int, text: str) -> None:
    print(f"[{step}/{total}] {text}", flush=True)


def read_wav_16k(path: Path) -> np.ndarray:
    """Any PCM16 WAV as mono 16 kHz int16 (mixed down and resampled as needed)."""
    import soxr

    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"pttd demo: {path}: only 16-bit PCM WAV files are supported")
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != MIC_RATE:
        data = soxr.resample(data, rate, MIC_RATE)
    return np.ascontiguousarray(data, dtype=np.int16)


def speak(text: str, workdir: Path) -> np.ndarray:
    """A phrase spoken by espeak-ng, as 16 kHz int16."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("pttd demo: espeak-ng is not installed; run `make demo` (it installs "
                         "it), or pass --wav FILE")
    out = workdir / "phrase.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(out), text],
                   check=True, capture_output=True)
    return read_wav_16k(out)


def write_wav(path: Path, samples: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)


def mic_timeline(segments: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The microphone stream: each phrase, then room for its reply; returns where each lies."""
    parts = [np.zeros(int(LEAD_S * MIC_RATE), dtype=np.int16)]
    spans = []
    pos = len(parts[0])
    for seg in segments:
        spans.append((pos, pos + len(seg)))
        room = np.zeros(int(GAP_S * MIC_RATE) + len(seg) * 3 // 2, dtype=np.int16)
        parts += [seg, room]
        pos += len(seg) + len(room)
    return np.concatenate(parts), spans


def demo_config(workdir: Path, endpoint: str, capture: str, playback: str) -> Path:
    path = workdir / "pttd.toml"
    path.write_text(f"""\
[live]
endpoint = "{endpoint}"
api_key_file = ""
[audio]
capture_device = "{capture}"
playback_device = "{playback}"
[button]
pin = "GPIO17"
min_press_ms = 100
[control]
socket = "{workdir / 'control.sock'}"
[state]
dir = "{workdir / 'state'}"
[log]
level = "warning"
""")
    return path


class Driver:
    """Presses the mock button in step with the microphone stream and prints each turn."""

    def __init__(self, app: object, spans: list[tuple[int, int]], barge_in: bool,
                 total_steps: int) -> None:
        from daemon.app import App

        assert isinstance(app, App)
        self.app = app
        self.spans = spans
        self.barge_in = barge_in
        self.total = total_steps
        self.records: asyncio.Queue[object] = asyncio.Queue()
        app.on_turn = self.records.put_nowait

    async def wait_head(self, sample: int) -> None:
        while self.app.ring.head < sample:
            await asyncio.sleep(0.01)

    async def run(self) -> int:
        app = self.app
        t0 = time.monotonic()
        while app.live.state != "ready" or not app.started.is_set():
            if time.monotonic() - t0 > 20:
                print("      the Live session did not come up within 20 s:",
                      app.status()["problem"])
                return 1
            await asyncio.sleep(0.05)
        assert app.button is not None, "the demo presses the (mock) GPIO button"
        self.pin = app.button.button.pin
        print(f"      session ready in {(time.monotonic() - t0) * 1000:.0f} ms; "
              f"microphone {app.capture.granted or '?'}; speaker {app.playback.granted or '?'}")
        failures = 0
        for i, (start, end) in enumerate(self.spans, 1):
            last = i == len(self.spans)
            _say(5, self.total, f"turn {i}/{len(self.spans)}: speaking "
                 f"{(end - start) / MIC_RATE:.1f} s while holding the button")
            await self.wait_head(start - int(PRESS_EARLY_S * MIC_RATE))
            self.pin.drive_low()
            pressed = time.monotonic()
            await self.wait_head(end + int(RELEASE_LATE_S * MIC_RATE))
            self.pin.drive_high()
            print(f"      released after {time.monotonic() - pressed:.2f} s; waiting for the reply")
            if last and self.barge_in:
                await self._barge_in()
            rec = await asyncio.wait_for(self.records.get(), TURN_TIMEOUT_S)
            self.show(rec)
            if last and self.barge_in:
                rec = await asyncio.wait_for(self.records.get(), TURN_TIMEOUT_S)
                self.show(rec)
            failures += rec.outcome.startswith("failed")  # type: ignore[attr-defined]
            while app.machine.state.value not in ("idle", "offline"):
                await asyncio.sleep(0.02)
        return 1 if failures else 0

    async def _barge_in(self) -> None:
        while not self.app.playback.playing:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.6)
        print("      barge-in: pressing while the reply plays")
        self.pin.drive_low()
        await asyncio.sleep(0.8)
        self.pin.drive_high()

    @staticmethod
    def show(rec: object) -> None:
        f = rec.fields()  # type: ignore[attr-defined]
        print(f"      turn {f['PTTD_TURN']}: {f['PTTD_OUTCOME']}")
        print(f"        press -> activityStart   {f['PTTD_PRESS_TO_START_MS'] or '-':>6} ms "
              "(from the finger going down; includes the 100 ms minimum press)")
        print(f"        audio sent               {f['PTTD_AUDIO_SENT_S']:>6} s "
              "(pre-roll included)")
        print(f"        release -> first reply   {f['PTTD_RELEASE_TO_REPLY_MS'] or '-':>6} ms")
        print(f"        reply played             {f['PTTD_REPLY_S']:>6} s, underruns "
              f"{f['PTTD_UNDERRUNS']}, interrupted {f['PTTD_INTERRUPTED']}")
        if f["PTTD_INPUT_TEXT"]:
            print(f"        heard:  {f['PTTD_INPUT_TEXT']}")
        if f["PTTD_OUTPUT_TEXT"]:
            print(f"        reply:  {f['PTTD_OUTPUT_TEXT']}")


def _segments(args: argparse.Namespace, workdir: Path) -> Iterator[np.ndarray]:
    if args.wav:
        seg = read_wav_16k(Path(args.wav))
        for _ in range(args.turns):
            yield seg
    else:
        phrases = demo_tools.PHRASES if args.tools else PHRASES
        for i in range(args.turns):
            yield speak(phrases[i % len(phrases)], workdir)


def main(args: argparse.Namespace) -> int:
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    os.environ.setdefault("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")
    if args.turns < 1:
        raise SystemExit("pttd demo: --turns must be at least 1")
    total = 7 if args.tools else 6
    if args.tools:
        args.turns = len(demo_tools.TURNS)
    out = Path(args.out).resolve()
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="pttd-demo-"))
        stack.callback(shutil.rmtree, workdir, True)
        source = args.wav or "espeak-ng speech"
        _say(1, total, f"making the microphone input ({args.turns} turns, {source})")
        mic, spans = mic_timeline(list(_segments(args, workdir)))
        mic_path = workdir / "mic.raw"
        mic_path.write_bytes(mic.tobytes())

        from daemon.devkit.simsink import SimSink, SimSinkError

        _say(2, total, "starting a PulseAudio null sink as the sound card")
        try:
            sink = stack.enter_context(SimSink(workdir, mic_file=mic_path))
        except SimSinkError as exc:
            print(f"pttd demo: {exc}", file=sys.stderr)
            return 1
        os.environ.update(sink.env)

        from config.apikey import ApiKey

        if args.live:
            key_value = os.environ.get("GEMINI_API_KEY", "")
            if not key_value:
                print("pttd demo --live needs GEMINI_API_KEY set", file=sys.stderr)
                return 1
            key = ApiKey("$GEMINI_API_KEY", key_value)
            endpoint = "wss://generativelanguage.googleapis.com"
            _say(3, total, "using the real Gemini Live API")
        else:
            from daemon.devkit.emulator import EmulatorOptions, EmulatorThread

            emu = stack.enter_context(EmulatorThread(EmulatorOptions(
                mode="echo", tool_turns=demo_tools.TURNS if args.tools else ())))
            key = ApiKey("demo", "demo-key")
            endpoint = emu.url
            _say(3, total, f"started the Live API emulator at {endpoint} (echo mode"
                 f"{'; it answers the request with a set_timer call' if args.tools else ''})")

        import config
        from daemon import journal
        from daemon.app import App

        cfg = config.load(demo_config(workdir, endpoint, sink.capture_device,
                                      sink.playback_device))
        journal.setup(cfg.log.level, secrets=[key.reveal()])
        logging.getLogger("pttd.emulator.websocket").setLevel(logging.WARNING)
        _say(4, total, "starting pttd: capture, playback, control socket, warm Live session")
        app = App(cfg, key)
        driver_rc = 1

        async def both() -> None:
            nonlocal driver_rc
            runner = asyncio.create_task(app.run())
            try:
                driver = Driver(app, spans, args.barge_in, total)
                driver_rc = await driver.run()
                if args.tools and not args.live:
                    demo_tools.show_calls(emu)
                    driver_rc |= await demo_tools.ring_and_silence(app, driver.pin,
                                                                   f"[6/{total}]")
            finally:
                app.stop()
                await runner

        asyncio.run(both())
        written = sink.written()
        write_wav(out, written, cfg.audio.playback_rate)
        _say(total, total, f"wrote what the speaker played to {out} "
             f"({len(written) / 2 / cfg.audio.playback_rate:.1f} s)")
    return driver_rc
