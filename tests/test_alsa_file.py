"""Capture and playback through real pyalsaaudio into ALSA `file` PCMs: byte-exact, unpaced."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fixtures_audio import LoopThread, counter

from config import AudioConfig, EarconsConfig
from hw import capture, pcm
from hw.capture import Capture
from hw.earcons import tone
from hw.pcm import DeviceError, error_code, holders, open_pcm
from hw.playback import Playback
from hw.ring import Ring

QUIET = EarconsConfig(enabled=False)


def _file_pcm(name: str, out: Path, infile: Path | None = None) -> str:
    src = f' infile "{infile}";' if infile else ""
    return f'pcm.{name} {{ type file; slave.pcm "null"; file "{out}";{src} format "raw" }}'


class _Collector:
    """Reads the ring on every capture notification, as the app does while armed."""

    def __init__(self, ring: Ring, want: int) -> None:
        self.ring, self.want = ring, want
        self.buf = np.zeros(want, dtype=np.int16)
        self.n = 0
        self.pos = 0
        self.done = threading.Event()

    def __call__(self, head: int, t: float) -> None:
        if self.n < self.want:
            self.pos, k = self.ring.read(self.pos, self.buf[self.n:])
            self.n += k
        if self.n >= self.want:
            self.done.set()


def _capture(on_loop: LoopThread, cfg: AudioConfig, want: int) -> np.ndarray:
    ring = Ring(16000 * 4)
    collector = _Collector(ring, want)
    cap = Capture(cfg, ring)
    on_loop.call(cap.arm, collector)
    cap.start()
    try:
        assert collector.done.wait(10), f"only {collector.n} of {want} samples captured"
    finally:
        cap.stop()
    assert cap.overruns == 0 and ring.overruns == 0
    return collector.buf


def test_capture_delivers_the_file_in_order(tmp_path: Path, alsa_conf: Callable,
                                            on_loop: LoopThread) -> None:
    n = 16000 * 3 + 123
    counter(0, n).tofile(tmp_path / "in.raw")
    alsa_conf(_file_pcm("cap16", tmp_path / "unused.raw", tmp_path / "in.raw"))
    got = _capture(on_loop, AudioConfig(capture_device="cap16"), n)
    np.testing.assert_array_equal(got, counter(0, n))


def test_capture_48k_stereo_selects_resamples_and_keeps_pitch(
        tmp_path: Path, alsa_conf: Callable, on_loop: LoopThread) -> None:
    t = np.arange(48000 * 2) / 48000
    stereo = np.stack([8000 * np.sin(2 * np.pi * 3000 * t), 8000 * np.sin(2 * np.pi * 1000 * t)],
                      axis=1).astype(np.int16)
    stereo.tofile(tmp_path / "in.raw")
    alsa_conf(_file_pcm("cap48", tmp_path / "unused.raw", tmp_path / "in.raw"))
    cfg = AudioConfig(capture_device="cap48", capture_rate=48000, capture_channels=2,
                      capture_channel=1)
    got = _capture(on_loop, cfg, 16000).astype(np.float64)[4000:]
    spectrum = np.abs(np.fft.rfft(got * np.hanning(len(got))))
    assert abs(np.argmax(spectrum) * 16000 / len(got) - 1000) < 5
    assert np.abs(got).max() == pytest.approx(8000, rel=0.05)


def _play(tmp_path: Path, alsa_conf: Callable, cfg: AudioConfig, chunks: list[bytes], *,
          earcons: EarconsConfig = QUIET, before_end: Callable[[Playback], None] | None = None,
          ) -> tuple[bytes, Playback, list[tuple[float, float]]]:
    alsa_conf(_file_pcm("play", tmp_path / "out.raw"))
    drained = threading.Event()
    pb = Playback(dataclasses.replace(cfg, playback_device="play"), earcons,
                  on_drained=drained.set)
    written: list[tuple[float, float]] = []
    pb.on_written = lambda received, handed: written.append((received, handed))
    pb.start()
    try:
        for i, chunk in enumerate(chunks):
            pb.feed(chunk, received_at=float(i))
        if before_end:
            before_end(pb)
        pb.end_reply()
        assert drained.wait(10), "on_drained was not called"
    finally:
        pb.stop()
    return (tmp_path / "out.raw").read_bytes(), pb, written


def _split(data: bytes, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, len(data), size=40))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_playback_24k_writes_exactly_the_reply(tmp_path: Path, alsa_conf: Callable) -> None:
    reply = counter(7, 24000 * 2 + 77).tobytes()
    chunks = _split(reply, 1)
    assert any(len(c) % 2 for c in chunks), "the split must exercise odd byte counts"
    out, pb, written = _play(tmp_path, alsa_conf, AudioConfig(), chunks)
    assert out == reply
    assert pb.underruns == 0 and not pb.playing
    assert [r for r, _ in written] == [float(i) for i, c in enumerate(chunks) if len(c) > 1]


def test_playback_48k_keeps_a_1khz_tone_clean(tmp_path: Path, alsa_conf: Callable) -> None:
    t = np.arange(24000) / 24000
    reply = (16000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    # The whole reply is buffered before it starts: the file PCM is unpaced, so a reply that
    # started early would run dry between feeds and get silence.
    out, _, _ = _play(tmp_path, alsa_conf, AudioConfig(playback_rate=48000, prebuffer_ms=2000),
                      _split(reply.tobytes(), 2))
    got = np.frombuffer(out, dtype=np.int16).astype(np.float64)
    assert abs(len(got) - 48000) <= 1
    mid = got[4800:43200]
    spectrum = np.abs(np.fft.rfft(mid * np.blackman(len(mid)))) ** 2
    freqs = np.fft.rfftfreq(len(mid), 1 / 48000)
    assert abs(freqs[np.argmax(spectrum)] - 1000) < 2
    band = np.abs(freqs - 1000) < 20
    snr = 10 * np.log10(spectrum[band].sum() / spectrum[~band].sum())
    print(f"1 kHz through 24->48 kHz playback: SNR {snr:.1f} dB")
    assert snr >= 60


def test_volume_scales_and_earcon_mixes(tmp_path: Path, alsa_conf: Callable) -> None:
    reply = np.full(24000 // 2, 1000, dtype=np.int16)
    out, _, _ = _play(tmp_path, alsa_conf, AudioConfig(volume=0.5), [reply.tobytes()],
                      earcons=EarconsConfig(volume=0.2),
                      before_end=lambda pb: pb.play_earcon("error"))
    got = np.frombuffer(out, dtype=np.int16).astype(np.int64)
    beep = tone("error", 24000, 0.2).astype(np.int64)
    # The tone starts at whichever period was next when it was asked for (its first samples
    # round to zero, so the first difference is a little later).
    start = int(np.argmax(np.append(got[:len(reply)], 0) != 500)) // 480 * 480
    expected = np.zeros(max(len(reply), start + len(beep)), dtype=np.int64)
    expected[:len(reply)] += 1000
    expected[start:start + len(beep)] += beep
    assert len(got) == len(expected)
    np.testing.assert_allclose(got, expected * 0.5, atol=1)


def test_end_of_empty_reply_still_drains(tmp_path: Path, alsa_conf: Callable) -> None:
    out, pb, _ = _play(tmp_path, alsa_conf, AudioConfig(), [b"\x01"])
    assert out == b"" and pb.underruns == 0


def test_missing_device_is_retried_until_it_appears(tmp_path: Path, alsa_conf: Callable,
                                                    on_loop: LoopThread) -> None:
    counter(0, 16000).tofile(tmp_path / "in.raw")
    status: list[tuple[bool, str]] = []
    changed = threading.Event()

    def on_status(online: bool, message: str) -> None:
        status.append((online, message))
        changed.set()

    # The daemon's ring: the file plugin is never empty, so a wake-up reads a whole device
    # buffer (a second) before the reader is told.
    ring = capture.capture_ring(AudioConfig())
    collector = _Collector(ring, 16000)
    cap = Capture(AudioConfig(capture_device="latecap"), ring, on_status=on_status)
    on_loop.call(cap.arm, collector)
    cap.start()
    try:
        assert changed.wait(5)
        assert status[0][0] is False and "'latecap'" in status[0][1]
        changed.clear()
        alsa_conf(_file_pcm("latecap", tmp_path / "unused.raw", tmp_path / "in.raw"))
        assert changed.wait(5)
        assert status[-1][0] is True and cap.online and "16000 Hz" in cap.granted
        assert collector.done.wait(5)
    finally:
        cap.stop()
    assert [s for s, _ in status] == [False, True]
    np.testing.assert_array_equal(collector.buf, counter(0, 16000))


def test_open_refuses_unknown_device_clearly() -> None:
    with pytest.raises(DeviceError, match=r"cannot open capture device 'nosuchpcm'"):
        open_pcm("capture", "nosuchpcm", 16000, 1, 20)


def test_error_code_reads_alsa_messages() -> None:
    assert error_code(pcm.alsaaudio.ALSAAudioError("Input/output error [x]")) == 5
    assert error_code(pcm.alsaaudio.ALSAAudioError("Device or resource busy [hw:0]")) == 16
    assert error_code(pcm.alsaaudio.ALSAAudioError("something else")) is None


def test_holders_names_the_process_with_the_device_open(tmp_path: Path) -> None:
    dev = tmp_path / "pcmC0D0c"
    dev.write_bytes(b"")
    child = subprocess.Popen([sys.executable, "-c", f"f = open({str(dev)!r}); input()"],
                             stdin=subprocess.PIPE)
    try:
        for _ in range(200):
            found = holders("capture", prefix=str(tmp_path / "pcm"))
            if found:
                break
            threading.Event().wait(0.01)
        assert found == [f"{child.pid} (python3)"] or found == [f"{child.pid} (python)"]
        assert holders("playback", prefix=str(tmp_path / "pcm")) == []
    finally:
        child.kill()
        child.wait()


def test_a_crashing_callback_stops_capture_loudly(tmp_path: Path, alsa_conf: Callable,
                                                  caplog: pytest.LogCaptureFixture,
                                                  on_loop: LoopThread) -> None:
    counter(0, 16000).tofile(tmp_path / "in.raw")
    alsa_conf(_file_pcm("crashcap", tmp_path / "unused.raw", tmp_path / "in.raw"))
    cap = Capture(AudioConfig(capture_device="crashcap"), Ring(16000))

    def notify(head: int, t: float) -> None:
        raise RuntimeError("event loop is closed")

    on_loop.call(cap.arm, notify)
    cap.start()
    assert cap._thread is not None
    cap._thread.join(5)
    assert not cap._thread.is_alive() and not cap.online
    assert "capture thread stopped by an unexpected error" in caplog.text
    cap.stop()


def test_capture_ring_holds_preroll_and_slack() -> None:
    assert capture.capture_ring(AudioConfig(preroll_ms=300), slack_s=2.0).capacity == 4800 + 32000


def test_alsa_lib_does_not_print_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DeviceError):
        open_pcm("playback", "pttd_no_such_pcm", 24000, 1, 20)
    assert capfd.readouterr().err == ""
