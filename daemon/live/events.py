"""Typed events of the Gemini Live API, one per thing a server frame can say.

frames.py turns server frames into these; the client, the turn machine's adapter and the
tests match on them, so no code outside frames.py sees the wire's JSON.

    >>> TurnComplete(reason="NEED_MORE_INPUT", waiting_for_input=True).waiting_for_input
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SetupComplete:
    """setupComplete: the session is live; `session_id` when the server names it."""

    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Reply audio: PCM16LE mono at `rate` (24 kHz from the real service)."""

    data: bytes
    rate: int


@dataclass(frozen=True, slots=True)
class TextPart:
    """A text part of the model's turn; `thought` marks thinking, not the answer."""

    text: str
    thought: bool = False


@dataclass(frozen=True, slots=True)
class InputTranscription:
    """What the server heard the user say."""

    text: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class OutputTranscription:
    """What the model's spoken reply says."""

    text: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class GenerationComplete:
    """The model has generated all of its reply (it may still be arriving)."""


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """The model's turn is over (turnComplete), as the SDK reads it.

    `reason` is the server's turnCompleteReason (e.g. "NEED_MORE_INPUT", "RESPONSE_REJECTED");
    `waiting_for_input` says the model stopped because it expects the user to go on, so no reply
    is owed; `interaction_status` ("IDLE", "IN_PROGRESS", ...) says whether more output may still
    follow, e.g. from background reasoning. The SDK's `receive()` ends an interaction on the
    status when there is one, else on turnComplete; `ends_interaction` decides the same way.

        >>> TurnComplete(interaction_status="IN_PROGRESS").ends_interaction
        False
    """

    reason: str | None = None
    waiting_for_input: bool = False
    interaction_status: str | None = None

    @property
    def ends_interaction(self) -> bool:
        status = self.interaction_status
        return status in (None, "INTERACTION_STATUS_UNSPECIFIED") or status == "IDLE"


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The server stopped the reply early; what was already sent is stale."""


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One call the model asks the client to make."""

    id: str
    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """toolCall: the model waits for a toolResponse to these calls."""

    calls: tuple[FunctionCall, ...]


@dataclass(frozen=True, slots=True)
class ToolCallCancellation:
    """toolCallCancellation: calls the model no longer wants answered."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GoAway:
    """The server will close soon; `time_left_s` is None when it did not say how soon."""

    time_left_s: float | None


@dataclass(frozen=True, slots=True)
class SessionResumptionUpdate:
    """A handle to resume this session on a new connection, when resumable."""

    handle: str | None
    resumable: bool
    last_consumed_index: int | None = None


@dataclass(frozen=True, slots=True)
class UsageMetadata:
    """Token counts of the reply, as the server reports them (usually with its turnComplete)."""

    prompt_tokens: int = 0
    response_tokens: int = 0
    total_tokens: int = 0
    thoughts_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Unknown:
    """Top-level (or serverContent) keys this parser does not know; logged, never fatal."""

    keys: tuple[str, ...]


Event = (SetupComplete | AudioChunk | TextPart | InputTranscription | OutputTranscription
         | GenerationComplete | TurnComplete | Interrupted | ToolCall | ToolCallCancellation
         | GoAway | SessionResumptionUpdate | UsageMetadata | Unknown)

