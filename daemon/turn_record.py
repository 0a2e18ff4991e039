"""The per-turn journal record: what one press cost and what came of it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from config.rates import INPUT_RATE
from daemon.live.events import UsageMetadata


@dataclass
class TurnRecord:
    """Filled in as a turn goes; `fields()` becomes the PTTD_* fields of one journal entry."""

    turn: int
    pressed_at: float
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

    def first_audio(self) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = time.monotonic()

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
        }

    def summary(self) -> str:
        f = self.fields()
        parts = [f"turn {self.turn} {self.outcome}", f"sent {f['PTTD_AUDIO_SENT_S']} s"]
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
