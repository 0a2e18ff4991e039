"""`pttd devices` and the device part of `pttd check`, against real ALSA PCMs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import alsaaudio
import pytest

from config import AudioConfig
from daemon.devkit.simsink import SimSink
from hw.devices import capabilities, list_pcms, probe
from hw.pcm import busy_note


def test_list_shows_configured_pcms(tmp_path: Path, alsa_conf: Callable) -> None:
    alsa_conf(f'pcm.pttd_listed {{ type file; slave.pcm "null"; file "{tmp_path}/o.raw"; '
              'format "raw"; hint { show on; description "listed" } }')
    pcms = {p.name: p for p in list_pcms()}
    assert pcms["pttd_listed"].kinds == ("playback", "capture")
    assert "null" in pcms
    assert pcms["pttd_listed"].line() == "pttd_listed  (playback, capture)"


def test_capabilities_of_a_real_pcm() -> None:
    rates, channels = capabilities("null", "capture")
    assert rates.endswith(" Hz") and "-" in rates
    assert channels == "1, 2, 4, 6, 8"


def test_probe_reports_what_was_granted(tmp_path: Path, alsa_conf: Callable) -> None:
    alsa_conf(f'pcm.pttd_probe {{ type file; slave.pcm "null"; file "{tmp_path}/o.raw"; '
              'format "raw" }')
    cfg = AudioConfig(capture_device="pttd_probe", playback_device="pttd_probe",
                      capture_rate=48000, capture_channels=2)
    cap, play = probe(cfg)
    assert cap.ok and play.ok
    assert cap.line() == ("capture device 'pttd_probe': ok, granted 48000 Hz, 2 ch, S16_LE, "
                          "period 9600 frames, buffer 38400 frames (resampled to 16000 Hz)")
    assert "24000 Hz, 1 ch" in play.detail and "resampled" not in play.detail


def test_probe_names_the_missing_device() -> None:
    cap, play = probe(AudioConfig(capture_device="pttd_nothere", playback_device="null"))
    assert not cap.ok and "cannot open capture device 'pttd_nothere'" in cap.line()
    assert play.ok


def test_busy_note_only_for_busy() -> None:
    assert busy_note("capture", alsaaudio.ALSAAudioError("Input/output error [x]")) == ""
    busy = alsaaudio.ALSAAudioError("Device or resource busy [hw:0]")
    assert busy_note("capture", busy) == "; busy (holder not visible in /proc)"


def test_simsink_pcms_are_listed(sim_env: SimSink) -> None:
    names = {p.name for p in list_pcms()}
    assert {sim_env.capture_device, sim_env.playback_device, sim_env.plain_capture,
            sim_env.plain_playback} <= names


def test_simsink_without_pulseaudio_says_what_to_do(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="not installed: run make setup"):
        SimSink(tmp_path).start()


def test_simsinks_are_independent_and_leave_nothing_behind(tmp_path: Path) -> None:
    with SimSink(tmp_path) as one, SimSink(tmp_path) as two:
        assert one.dir != two.dir and one.socket != two.socket
        procs = [one._server, one._monitor, two._server, two._monitor]
        assert all(p is not None and p.poll() is None for p in procs)
    assert all(p is not None and p.poll() is not None for p in procs)
    assert all(not Path(f"/proc/{p.pid}").exists() for p in procs if p is not None)
