"""What `pttd status` answers and systemd's STATUS= line says, from one snapshot of the daemon.

The app reads its parts into a Snapshot on the loop; the wording and the verdict (ready or
degraded, and what a user should fix) are decided here, without the parts.

    >>> Snapshot(state="idle", session="connecting", problems=("",)).line()
    'degraded: idle, session connecting'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The daemon's parts at one moment; `problems` are what a user should fix (a device that
    would not open, what the Live API refused), "" where there is none."""

    state: str
    session: str
    problems: tuple[str, ...] = ()
    turns: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)
    capture_online: bool = True
    capture_device: str = ""
    capture_granted: str = ""
    overruns: int = 0
    samples: int = 0
    playback_online: bool = True
    playback_device: str = ""
    playback_granted: str = ""
    underruns: int = 0
    playing: bool = False
    frames: int = 0
    wakeups: int = 0
    connections: int = 0

    @property
    def healthy(self) -> bool:
        return self.session == "ready" and self.capture_online and self.playback_online

    @property
    def problem(self) -> str:
        return "; ".join(p for p in self.problems if p)

    def line(self) -> str:
        """One line for STATUS= and the ready log: the state, and whatever is wrong."""
        parts = [self.state, f"session {self.session}"]
        if not self.capture_online:
            parts.append("microphone offline")
        if not self.playback_online:
            parts.append("speaker offline")
        if self.problem:
            parts.append(self.problem)
        line = ", ".join(parts)
        return line if self.healthy else f"degraded: {line}"

    def document(self) -> dict[str, Any]:
        """The JSON answer's fields that come from the snapshot."""
        return {
            "ok": True,
            "state": self.state,
            "session": self.session,
            "turn": self.turns,
            "outcomes": dict(self.outcomes),
            "capture": {"online": self.capture_online, "device": self.capture_device,
                        "granted": self.capture_granted, "overruns": self.overruns,
                        "samples": self.samples},
            "playback": {"online": self.playback_online, "device": self.playback_device,
                         "granted": self.playback_granted, "underruns": self.underruns,
                         "playing": self.playing},
            "uplink": {"frames": self.frames, "task_wakeups": self.wakeups},
            "reconnects": max(0, self.connections - 1),
            "problem": self.problem,
        }
