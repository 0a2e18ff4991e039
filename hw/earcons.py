"""Short feedback tones, generated once with numpy at the playback device's rate.

Each tone is a few sine blips with raised-cosine edges, so starting and stopping them never
clicks. They are mixed into the playback stream (`hw.playback.Playback.play_earcon`) rather than
played on a second device handle, which a single-client sound card would refuse.
"""

from __future__ import annotations

import numpy as np

from config import EarconsConfig

NAMES = ("listen_start", "listen_stop", "error")
# A ringing timer: played whatever [earcons] says (a timer nobody hears is no timer), at its own
# level, and repeated by the daemon until a press silences it.
ALARM = "alarm"
ALARM_LEVEL = 0.6

# name -> blips of (frequency Hz, duration ms), separated by GAP_MS of silence
_SHAPES: dict[str, tuple[tuple[float, float], ...]] = {
    "listen_start": ((660.0, 60.0), (990.0, 80.0)),
    "listen_stop": ((990.0, 60.0), (660.0, 80.0)),
    "error": ((330.0, 120.0), (330.0, 120.0)),
    ALARM: ((1760.0, 110.0), (1760.0, 110.0), (1760.0, 110.0), (1760.0, 110.0)),
}
GAP_MS = 30.0
EDGE_MS = 8.0


def tone(name: str, rate: int, volume: float) -> np.ndarray:
    """The named earcon as mono int16 at `rate`, peak `volume` of full scale."""
    if name not in _SHAPES:
        raise ValueError(f"unknown earcon {name!r}; known: {', '.join((*NAMES, ALARM))}")
    parts = []
    gap = np.zeros(round(rate * GAP_MS / 1000), dtype=np.float64)
    for i, (freq, ms) in enumerate(_SHAPES[name]):
        n = round(rate * ms / 1000)
        blip = np.sin(2 * np.pi * freq * np.arange(n) / rate)
        edge = min(round(rate * EDGE_MS / 1000), n // 2)
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
        blip[:edge] *= ramp
        blip[n - edge:] *= ramp[::-1]
        if i:
            parts.append(gap)
        parts.append(blip)
    return np.round(np.concatenate(parts) * volume * 32767).astype(np.int16)


class Earcons:
    """The enabled tones for one device rate, generated on first use."""

    def __init__(self, cfg: EarconsConfig, rate: int) -> None:
        self.cfg = cfg
        self.rate = rate
        self._cache: dict[str, np.ndarray] = {}

    def enabled(self, name: str) -> bool:
        if name == ALARM:
            return True
        if name not in _SHAPES:
            raise ValueError(f"unknown earcon {name!r}; known: {', '.join((*NAMES, ALARM))}")
        return self.cfg.enabled and bool(getattr(self.cfg, name))

    def get(self, name: str) -> np.ndarray | None:
        """The tone's samples, or None when `[earcons]` switches it off (never the alarm)."""
        if not self.enabled(name):
            return None
        if name not in self._cache:
            level = ALARM_LEVEL if name == ALARM else self.cfg.volume
            self._cache[name] = tone(name, self.rate, level)
        return self._cache[name]
