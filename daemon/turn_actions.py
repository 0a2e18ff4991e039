"""What the press-to-talk turn machine (turns.py) asks the app to do: its actions, no I/O.

    >>> PlayEarcon("listen_start")
    PlayEarcon(name='listen_start')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StartStreaming:
    """activityStart, the pre-roll, then live audio until StopStreaming."""


@dataclass(frozen=True, slots=True)
class StopStreaming:
    """Send what is captured so far, then activityEnd (or audioStreamEnd for server VAD)."""


@dataclass(frozen=True, slots=True)
class CancelStreaming:
    """Stop streaming without sending anything more (the session is gone)."""


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """Drop everything buffered and stop the sound within one period."""


@dataclass(frozen=True, slots=True)
class PlayAudio:
    """Queue this chunk of the reply for the speaker; it carries the received bytes, no copy."""

    data: bytes
    rate: int


@dataclass(frozen=True, slots=True)
class EndReply:
    """No more audio for this reply: play out what is buffered, then PlaybackDrained."""


@dataclass(frozen=True, slots=True)
class PlayEarcon:
    """Play a short cue sound."""

    name: str  # "listen_start" | "listen_stop" | "error"


@dataclass(frozen=True, slots=True)
class SetLed:
    """Show a pattern on the status LED."""

    pattern: str  # a State value, or "error"


@dataclass(frozen=True, slots=True)
class UnaskedReply:
    """A reply no press asked for begins (the model speaks a slow function's result, or
    proactive audio): open a turn record for it, marked as such."""


@dataclass(frozen=True, slots=True)
class WatchQuiet:
    """Arm the turn timer for Timeout("quiet") in `seconds`: a reply nobody asked for must end
    even if the server never says it has."""

    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Stop the pending turn timer: what it guarded has happened."""


@dataclass(frozen=True, slots=True)
class Log:
    """A journal line: the machine does no I/O itself."""

    level: str
    message: str


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """A turn is over, and how it went, for the turn record."""

    outcome: str  # "completed" | "interrupted" | "failed: <reason>"
    interrupted: bool = False


Action = (StartStreaming | StopStreaming | CancelStreaming | StopPlayback | PlayAudio | EndReply
          | PlayEarcon | SetLed | UnaskedReply | WatchQuiet | CancelTimer | Log | TurnEnded)
