"""What a Live server event means for the turn: the turn machine's event, and the turn record's
notes (transcripts, token counts, why the turn ended). Pure, so the mapping is tested alone.

    >>> from daemon.live.events import TextPart
    >>> turn_event(TextPart("It is noon."), None)
    ReplyText()
"""

from __future__ import annotations

from daemon import turns
from daemon.live import events as live
from daemon.turn_record import TurnRecord


def turn_event(event: live.Event, record: TurnRecord | None) -> turns.Event | None:
    """The turn machine's event for `event` (None: it has none), noting in `record` (the open
    turn's, if any) what the server said."""
    match event:
        case live.AudioChunk():
            return turns.ReplyAudio(event.data, event.rate)
        case live.InputTranscription() if record is not None:
            record.input_text.append(event.text)
        case live.OutputTranscription() if record is not None:
            record.output_text.append(event.text)
        case live.TextPart() if not event.thought:
            if record is not None:
                record.output_text.append(event.text)
            return turns.ReplyText()
        case live.UsageMetadata() if record is not None:
            record.usage = event
        case live.TurnComplete():
            if record is not None and event.ends_interaction:
                record.end_reason = event.reason or ""
                record.waiting_for_input = event.waiting_for_input
            return turns.TurnComplete(event.reason, event.waiting_for_input,
                                      event.ends_interaction)
        case live.Interrupted():
            return turns.Interrupted()
        case live.ToolCall():
            return turns.ToolCalled()
    return None
