"""The per-turn journal record: what one press cost and what came of it.

    >>> turns = TurnLog()
    >>> rec = turns.begin(pressed_at=1.0, now=1.001, underruns=0, overruns=0)
    >>> turns.end("completed", False, samples_sent=16000, underruns=0, overruns=0) is rec
    True
    >>> turns.total, turns.outcomes
    (1, {'completed': 1})
"""

from __future__ import annotations

from dataclasses import dataclass, field

from config.rates import INPUT_RATE
from daemon.live.events import UsageMetadata


@dataclass
class TurnRecord:
    """Filled in as a turn goes; `fields()` becomes the PTTD_* fields of one journal entry."""

    turn: int
    pressed_at: float | None                # None: a reply nobody asked for (no press)
    activity_started_at: float | None = None
    released_at: float | None = None
    first_audio_at: float | None = None
    samples_sent: int = 0
    reply_s: float = 0.0
    underruns_at_start: int = 0
    overruns_at_start: int = 0
    underruns: int = 0
    overruns: int = 0
    interrupted: bool = False
    input_text: list[str] = field(default_factory=list)
    output_text: list[str] = field(default_factory=list)
    outcome: str = ""
    usage: UsageMetadata | None = None      # the server's token counts for the reply
    end_reason: str = ""                    # its turnCompleteReason
    waiting_for_input: bool = False
    unasked: bool = False                   # the model spoke with no press (see turns.py)

    def reply_audio(self, nbytes: int, rate: int, now: float) -> bool:
        """Count `nbytes` of PCM16 reply played at `rate`; True for the turn's first audio."""
        self.reply_s += nbytes / 2 / rate
        first = self.first_audio_at is None
        if first:
            self.first_audio_at = now
        return first

    def close(self, outcome: str, interrupted: bool, *, samples_sent: int, underruns: int,
              overruns: int) -> None:
        """The turn is over; the device counters are their totals now (the record keeps what
        this turn added)."""
        self.outcome = outcome
        self.interrupted = interrupted
        self.samples_sent = 0 if self.unasked else samples_sent  # the sender's is the last turn's
        self.underruns = underruns - self.underruns_at_start
        self.overruns = overruns - self.overruns_at_start

    @property
    def kind(self) -> str:
        """The outcome without its reason: completed, interrupted or failed."""
        return self.outcome.split(":", 1)[0]

    @staticmethod
    def _ms(a: float | None, b: float | None) -> str:
        return "" if a is None or b is None else f"{(b - a) * 1000:.0f}"

    def fields(self) -> dict[str, str]:
        return {
            "PTTD_TURN": str(self.turn),
            "PTTD_OUTCOME": self.outcome,
            "PTTD_PRESS_TO_START_MS": self._ms(self.pressed_at, self.activity_started_at),
            "PTTD_AUDIO_SENT_S": f"{self.samples_sent / INPUT_RATE:.2f}",
            "PTTD_RELEASE_TO_REPLY_MS": self._ms(self.released_at, self.first_audio_at),
            "PTTD_REPLY_S": f"{self.reply_s:.2f}",
            "PTTD_UNDERRUNS": str(self.underruns),
            "PTTD_OVERRUNS": str(self.overruns),
            "PTTD_INTERRUPTED": "yes" if self.interrupted else "no",
            "PTTD_INPUT_TEXT": "".join(self.input_text).strip(),
            "PTTD_OUTPUT_TEXT": "".join(self.output_text).strip(),
            "PTTD_PROMPT_TOKENS": str(self.usage.prompt_tokens) if self.usage else "",
            "PTTD_RESPONSE_TOKENS": str(self.usage.response_tokens) if self.usage else "",
            "PTTD_THOUGHTS_TOKENS": str(self.usage.thoughts_tokens) if self.usage else "",
            "PTTD_TOTAL_TOKENS": str(self.usage.total_tokens) if self.usage else "",
            "PTTD_TURN_COMPLETE_REASON": self.end_reason,
            "PTTD_WAITING_FOR_INPUT": "yes" if self.waiting_for_input else "no",
            "PTTD_UNASKED": "yes" if self.unasked else "no",
        }

    def summary(self) -> str:
        f = self.fields()
        unasked = " (unasked)" if self.unasked else ""
        parts = [f"turn {self.turn}{unasked} {self.outcome}", f"sent {f['PTTD_AUDIO_SENT_S']} s"]
        if f["PTTD_PRESS_TO_START_MS"]:
            parts.append(f"press->start {f['PTTD_PRESS_TO_START_MS']} ms")
        if f["PTTD_RELEASE_TO_REPLY_MS"]:
            parts.append(f"release->reply {f['PTTD_RELEASE_TO_REPLY_MS']} ms")
        parts.append(f"reply {f['PTTD_REPLY_S']} s")
        if self.usage:
            parts.append(f"tokens {self.usage.prompt_tokens} in, {self.usage.response_tokens} out")
        if self.underruns or self.overruns:
            parts.append(f"underruns {self.underruns} overruns {self.overruns}")
        return ", ".join(parts)


class TurnLog:
    """The turns so far: the open one's record (None between turns), how many there were and
    how each kind ended, for `pttd status`."""

    def __init__(self) -> None:
        self.record: TurnRecord | None = None
        self.total = 0
        self.outcomes: dict[str, int] = {}
        self._between = TurnRecord(0, None)

    @property
    def notes(self) -> TurnRecord:
        """Where the server's notes (transcripts, token counts) go: the open turn's record or,
        between turns, one whose transcript the next reply nobody asked for takes over (its
        transcript may come before its audio)."""
        return self.record if self.record is not None else self._between

    def begin(self, pressed_at: float | None, now: float, *, underruns: int,
              overruns: int) -> TurnRecord:
        """A turn starts at `now` (its activityStart) for a press at `pressed_at`, or (None)
        the model begins a reply nobody asked for; the device counters are their totals now."""
        self.total += 1
        between, self._between = self._between, TurnRecord(0, None)
        self.record = TurnRecord(self.total, pressed_at, activity_started_at=now,
                                 underruns_at_start=underruns, overruns_at_start=overruns,
                                 unasked=pressed_at is None)
        if self.record.unasked:
            self.record.output_text = between.output_text
        return self.record

    def end(self, outcome: str, interrupted: bool, *, samples_sent: int, underruns: int,
            overruns: int) -> TurnRecord | None:
        """Close the open turn's record and count its outcome; None if no turn was open."""
        rec, self.record = self.record, None
        if rec is not None:
            rec.close(outcome, interrupted, samples_sent=samples_sent, underruns=underruns,
                      overruns=overruns)
            self.outcomes[rec.kind] = self.outcomes.get(rec.kind, 0) + 1
        return rec
