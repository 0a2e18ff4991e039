"""Earcons: the right pitch, no clicks at the edges, and each one switchable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from config import EarconsConfig
from hw.earcons import NAMES, Earcons, tone


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
def test_start_tone_pitch_and_edges(rate: int) -> None:
    x = tone("listen_start", rate, 0.5).astype(np.float64)
    assert abs(np.abs(x).max() - 0.5 * 32767) < 0.01 * 32767
    assert abs(x[0]) < 1 and abs(x[-1]) < 0.01 * 32767
    first = x[: round(rate * 0.06)]
    spectrum = np.abs(np.fft.rfft(first * np.hanning(len(first))))
    peak_hz = np.argmax(spectrum) * rate / len(first)
    assert abs(peak_hz - 660) < 20
    assert np.abs(np.diff(x)).max() < 0.2 * 32767


def test_tones_differ_and_unknown_is_refused() -> None:
    tones = [tone(n, 24000, 0.3) for n in NAMES]
    assert len({t.tobytes() for t in tones}) == len(NAMES)
    with pytest.raises(ValueError, match="unknown earcon"):
        tone("beep", 24000, 0.3)


def test_switches() -> None:
    cfg = EarconsConfig()
    assert all(Earcons(cfg, 24000).get(n) is not None for n in NAMES)
    off = Earcons(dataclasses.replace(cfg, enabled=False), 24000)
    assert all(off.get(n) is None for n in NAMES)
    some = Earcons(dataclasses.replace(cfg, listen_stop=False), 24000)
    assert some.get("listen_stop") is None and some.get("error") is not None
