"""What happens to a press-to-talk turn: the events the turn machine (turns.py) takes, no I/O.

    >>> TurnComplete(reason="NEED_MORE_INPUT").plain
    False
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Press:
    """The button went down (or `pttd press`), already debounced and confirmed."""


@dataclass(frozen=True, slots=True)
class Release:
    """The button came up: the user has finished speaking."""


@dataclass(frozen=True, slots=True)
class SessionReady:
    """The Live session is set up and can take a turn."""


@dataclass(frozen=True, slots=True)
class SessionLost:
    """The session went away; `state` is what the client is doing about it."""

    state: str = "offline"


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A microphone or speaker came online or went offline."""

    device: str  # "microphone" | "speaker"
    online: bool


@dataclass(frozen=True, slots=True)
class SendFailed:
    """Audio or an activity marker could not be sent; the turn cannot go on."""

    reason: str


@dataclass(frozen=True, slots=True)
class ReplyAudio:
    """A chunk of the spoken reply arrived: PCM16LE mono at `rate`, played if it is due."""

    data: bytes
    rate: int


@dataclass(frozen=True, slots=True)
class ReplyText:
    """Reply text arrived: the server answered, even if not aloud."""


@dataclass(frozen=True, slots=True)
class ToolCalled:
    """The model answered with function calls: the turn has its answer even if nothing is said
    now (a background function's result may be spoken after the turn, unasked)."""


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """The server closed the turn; `reason` is its turnCompleteReason, if any.

    `waiting_for_input`: the model waits for the user to go on (no reply is owed);
    `ends_interaction` False: more output may still follow (interactionStatus not IDLE).
    """

    reason: str | None = None
    waiting_for_input: bool = False
    ends_interaction: bool = True

    @property
    def plain(self) -> bool:
        """Says nothing beyond "this reply is over": what an interrupted reply's end looks like."""
        return self.reason is None and not self.waiting_for_input and self.ends_interaction


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The server says it stopped generating the reply early."""


@dataclass(frozen=True, slots=True)
class PlaybackDrained:
    """The speaker has played out everything it was given."""


@dataclass(frozen=True, slots=True)
class Timeout:
    """A turn timer fired; `kind` says which."""

    # "max_turn": held too long | "no_reply": the server never answered | "quiet": no reply
    # audio since the last look (WatchQuiet)
    kind: str


Event = (Press | Release | SessionReady | SessionLost | DeviceStatus | SendFailed | ReplyAudio
         | ReplyText | ToolCalled | TurnComplete | Interrupted | PlaybackDrained | Timeout)
