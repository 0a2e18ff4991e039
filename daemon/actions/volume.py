"""The speaker's volume as people set it (0-100 %), and the gain that puts on the samples.

`[audio] volume` stays what it was, the gain at 100 %; the level scales it. The gain follows the
square of the level, so each step of "quieter" sounds about as big as the last: loudness goes
roughly with the square root of amplitude, and a linear 50 % would sound barely quieter than
100 %. The alarm's floor is a level too, so "volume 0" never silences a ringing timer.

    >>> gain(0.5, base=1.0)
    0.25
    >>> set_percent(30), change(0.3, -50)
    (0.3, 0.0)
"""

from __future__ import annotations

# The least level the alarm plays at, whatever the volume is set to.
ALARM_FLOOR = 0.7


def _clamp(level: float) -> float:
    return round(min(1.0, max(0.0, level)), 2)


def set_percent(percent: float) -> float:
    return _clamp(percent / 100)


def change(level: float, delta: float) -> float:
    return _clamp(level + delta / 100)


def gain(level: float, base: float) -> float:
    """The playback gain at `level`; exactly `base` at 1.0, so 100 % leaves samples untouched
    when [audio] volume = 1.0."""
    return base if level >= 1.0 else base * level * level


def alarm_gain(base: float) -> float:
    return gain(ALARM_FLOOR, max(base, 1.0))
