"""`pttd demo`, the main job on a machine with no Pi: the real pipeline, end to end."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def test_demo_echoes_speech_into_demo_reply_wav_and_prints_a_timeline(tmp_path: Path) -> None:
    out = tmp_path / "demo-reply.wav"
    proc = subprocess.run([sys.executable, "-m", "daemon", "demo", "--turns", "1", "--out",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for step in range(1, 7):
        assert f"[{step}/6]" in proc.stdout
    assert "turn 1: completed" in proc.stdout
    assert "release -> first reply" in proc.stdout
    with wave.open(str(out)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    sent_s = float(proc.stdout.split("audio sent")[1].split()[0])
    # The whole echoed turn was played (earcons add a little), and it is speech, not silence.
    assert len(samples) / 24000 >= sent_s
    frames = samples[: len(samples) // 480 * 480].reshape(-1, 480)
    loud = np.sqrt((frames ** 2).mean(axis=1)) > 500
    assert loud.sum() * 0.02 > 1.0, "less than a second of audible speech in the reply"


def test_demo_tools_sets_a_timer_by_voice_hears_it_ring_and_silences_it(tmp_path: Path) -> None:
    out = tmp_path / "demo-reply.wav"
    proc = subprocess.run([sys.executable, "-m", "daemon", "demo", "--tools", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for step in range(1, 8):
        assert f"[{step}/7]" in proc.stdout
    assert 'model calls:  set_timer {"seconds": 5, "label": "tea"}' in proc.stdout
    assert 'pttd answers: {"output": {"label": "tea", "seconds": 5.0' in proc.stdout
    assert "the timer rings" in proc.stdout
    assert "the press silenced the alarm and started no turn" in proc.stdout
