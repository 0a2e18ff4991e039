"""The kitchen timers: a pure table of deadlines and the rules for setting, cancelling, listing
and firing them. No clock and no I/O: every method is given the wall-clock time, so the rules are
unit tests and the shell (daemon/actions/host.py) decides how to wait.

Deadlines are wall-clock times because they are what survives a restart; while the daemon runs,
the shell waits on the monotonic clock.

    >>> table = TimerTable()
    >>> table.add(600, "tea", now=1000.0).due
    1600.0
    >>> [t.label for t in table.pop_due(now=1600.0)]
    ['tea']
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

MAX_TIMERS = 20
MAX_SECONDS = 24 * 3600
MAX_LABEL = 60


class TimerError(ValueError):
    """A timer request that cannot be carried out; the message says why, for the model."""


@dataclass(frozen=True, slots=True)
class Timer:
    """One timer: what it is called ("" if nothing), when it is due, and how long it was set for."""

    label: str
    due: float
    seconds: float

    def name(self) -> str:
        return f"the {self.label} timer" if self.label else f"the {human(self.seconds)} timer"

    def public(self, now: float) -> dict[str, Any]:
        return {"label": self.label, "seconds": self.seconds,
                "left_s": round(max(0.0, self.due - now), 1), "due": self.due}


class TimerTable:
    """Pending timers, kept in order of their deadlines."""

    def __init__(self, timers: tuple[Timer, ...] = ()) -> None:
        self._timers = sorted(timers, key=lambda t: t.due)

    @property
    def timers(self) -> tuple[Timer, ...]:
        return tuple(self._timers)

    def add(self, seconds: float, label: str, now: float) -> Timer:
        """A new timer; one with the same label (case aside) is replaced, as people expect
        when they say "set the tea timer for five minutes" again."""
        if not 1 <= seconds <= MAX_SECONDS:
            raise TimerError(f"a timer runs from 1 second to {MAX_SECONDS // 3600} hours")
        label = " ".join(label.split())[:MAX_LABEL]
        same = self._find(label) if label else None
        if same is None and len(self._timers) >= MAX_TIMERS:
            raise TimerError(f"there are already {MAX_TIMERS} timers; cancel one first")
        if same is not None:
            self._timers.remove(same)
        timer = Timer(label, now + seconds, float(seconds))
        self._timers.append(timer)
        self._timers.sort(key=lambda t: t.due)
        return timer

    def replaced(self, label: str) -> Timer | None:
        """The timer add() would replace, if any."""
        return self._find(" ".join(label.split())) if label.strip() else None

    def cancel(self, label: str | None) -> Timer:
        """Cancel by label; with no label, the only timer, or else the next one due."""
        if not self._timers:
            raise TimerError("there are no timers")
        if label is None or not label.strip():
            timer = self._timers[0]
        else:
            found = self._find(label)
            if found is None:
                names = ", ".join(t.label or human(t.seconds) for t in self._timers)
                raise TimerError(f"no timer called {label.strip()!r}; the timers are: {names}")
            timer = found
        self._timers.remove(timer)
        return timer

    def pop_due(self, now: float) -> list[Timer]:
        """The timers due at `now`, removed from the table, earliest first."""
        due = [t for t in self._timers if t.due <= now]
        del self._timers[:len(due)]
        return due

    def next_due(self) -> float | None:
        return self._timers[0].due if self._timers else None

    def listing(self, now: float) -> list[dict[str, Any]]:
        return [t.public(now) for t in self._timers]

    def _find(self, label: str) -> Timer | None:
        """Exact label (case and spacing aside), else the one label that contains the words."""
        want = " ".join(label.lower().split())
        exact = [t for t in self._timers if t.label.lower() == want]
        if exact:
            return exact[0]
        near = [t for t in self._timers if t.label and want in t.label.lower()]
        return near[0] if len(near) == 1 else None


def restore(timers: tuple[Timer, ...], now: float,
            grace_s: float) -> tuple[TimerTable, list[Timer], list[Timer]]:
    """After a restart: (the table of timers still pending, those due at most `grace_s` ago,
    which ring now, and those missed by longer, which are dropped: a tea timer that ends
    while the power was off for an hour should not ring an hour late)."""
    pending = tuple(t for t in timers if t.due > now)
    late = [t for t in timers if now - grace_s <= t.due <= now]
    missed = [t for t in timers if t.due < now - grace_s]
    return TimerTable(pending), late, missed


_NUM = r"(\d+(?:\.\d+)?)"


@functools.cache
def _duration() -> re.Pattern[str]:
    """Compiled on first use: only `pttd timer` needs it, and start-up should not pay."""
    return re.compile(rf"{_NUM}|(?=\d)(?:{_NUM}h)?(?:{_NUM}m)?(?:{_NUM}s)?")


def parse_duration(text: str) -> float:
    """"90", "90s", "10m", "1h30m", "1.5h" in seconds; ValueError for anything else."""
    m = _duration().fullmatch(text.strip().lower())
    if m is None or not any(m.groups()):
        raise ValueError(f"{text.strip()!r} is not a duration; write e.g. 90, 90s, 10m or 1h30m")
    bare, h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    return bare + h * 3600 + mins * 60 + s


def human(seconds: float) -> str:
    """A duration as people say it: "10 minutes", "1 hour 30 minutes", "45 seconds"."""
    s = round(seconds)
    parts = []
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        n, s = divmod(s, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts) or "0 seconds"
