"""Scripted function calls for the emulator: each user turn can be answered by `toolCall`s
instead of an echo, and every `toolResponse` the client sends back is recorded.

A turn of the script says what the user "said" (sent as the input transcription) and which
calls the model makes; a call can be cancelled (`toolCallCancellation`) a while after it was
made. The emulator waits for the answers, then speaks a short reply naming them, so a test or
`pttd demo --tools` sees the whole round: call, answer, spoken confirmation.

A `later` turn is what the service does with NON_BLOCKING functions: the model does not wait
for the answers. It says "One moment." (or its `ack`; "" says nothing) and ends its turn
(turnComplete); each toolResponse that comes back afterwards, unless its `scheduling` is
SILENT, starts a model turn of its own that speaks the answer, with no user turn before it
(WHEN_IDLE: after what is being said; INTERRUPT: cutting it off), as the service does
(docs/DESIGN.md, "Replies nobody asked for").

    turns = (ScriptedTurn("set a tea timer for five seconds",
                          (ScriptedCall("set_timer", {"seconds": 5, "label": "tea"}),)),)
    EmulatorThread(EmulatorOptions(tool_turns=turns))    # or: pttd emulator --mode tools

A script file (`pttd emulator --tool-script FILE`) is a JSON list of turns:
`[{"heard": "...", "calls": [{"name": "set_volume", "args": {"percent": 30}}]}]`;
`"later": true` in a turn makes it a `later` one, and `"ack"` sets what it says first.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WAIT_S = 10.0
ACK = "One moment."


@dataclass(frozen=True)
class ScriptedCall:
    """One function call the "model" makes; `cancel_after_s` sends its cancellation then."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    cancel_after_s: float | None = None


@dataclass(frozen=True)
class ScriptedTurn:
    """What the user said in one turn, and the calls made in answer; `later`: the answers
    are spoken in model turns of their own, when they come (NON_BLOCKING), after the model
    says `ack` ("": nothing) and ends this one."""

    heard: str
    calls: tuple[ScriptedCall, ...]
    later: bool = False
    ack: str = ACK


# `pttd emulator --mode tools`: the turns of `pttd demo --tools`.
DEMO_TURNS = (
    ScriptedTurn("Set a tea timer for five seconds.",
                 (ScriptedCall("set_timer", {"seconds": 5, "label": "tea"}),)),
    ScriptedTurn("What timers do I have?", (ScriptedCall("list_timers"),)),
    ScriptedTurn("A bit quieter, please.", (ScriptedCall("change_volume", {"delta": -20}),)),
)


def load_script(path: str) -> tuple[ScriptedTurn, ...]:
    """A script file's turns; ValueError naming the file and what is wrong."""
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
        return tuple(ScriptedTurn(str(t.get("heard", "")), tuple(
            ScriptedCall(c["name"], dict(c.get("args", {})), c.get("cancel_after_s"))
            for c in t["calls"]), bool(t.get("later", False)), str(t.get("ack", ACK)))
            for t in body)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a tool script ({type(exc).__name__}: {exc}); see "
                         "daemon/devkit/tool_script.py") from None


Send = Callable[[Any, dict[str, Any]], Awaitable[None]]


class ToolPlayer:
    """Plays the script turn by turn and records what came back (read by tests and the demo):
    `calls` as sent, `responses` (each functionResponse with the time it arrived) and
    `cancelled` ids."""

    def __init__(self, turns: Sequence[ScriptedTurn], wait_s: float = WAIT_S) -> None:
        self.turns = list(turns)
        self.wait_s = wait_s
        self.calls: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.cancelled: list[str] = []
        self._ids = itertools.count(1)
        self._answered: dict[str, asyncio.Event] = {}
        self._later: set[str] = set()   # ids of calls whose answers are spoken when they come

    def received(self, body: Any) -> tuple[str, str] | None:
        """A client's toolResponse (the emulator has checked it is an object); for answers to
        a `later` turn's calls, (what the model says now, its scheduling), else None."""
        later = []
        for response in body.get("functionResponses") or body.get("function_responses") or ():
            if isinstance(response, dict):
                self.responses.append({**response, "at": time.monotonic()})
                call_id = str(response.get("id"))
                event = self._answered.get(call_id)
                if event is not None:
                    event.set()
                if call_id in self._later and response.get("scheduling") != "SILENT":
                    later.append(response)
        if not later:
            return None
        scheduling = "INTERRUPT" if any(r.get("scheduling") == "INTERRUPT" for r in later) \
            else "WHEN_IDLE"
        return self._answer([str(r.get("id")) for r in later]), scheduling

    async def play(self, session: Any, send: Send) -> tuple[str, str] | None:
        """The next scripted turn: the calls sent, their answers awaited; returns (what the
        user said, what the model says), or None when the script is over (echo as usual)."""
        if not self.turns:
            return None
        turn = self.turns.pop(0)
        if session.transcribe_in:
            await send(session, {"serverContent": {"inputTranscription": {
                "text": turn.heard, "finished": True}}})
        calls = []
        for call in turn.calls:
            call_id = f"call-{next(self._ids)}"
            calls.append((call_id, call))
            self._answered[call_id] = asyncio.Event()
            self.calls.append({"id": call_id, "name": call.name, "args": call.args,
                               "at": time.monotonic()})
        if turn.later:
            self._later.update(i for i, _ in calls)
        await send(session, {"toolCall": {"functionCalls": [
            {"id": i, "name": c.name, "args": c.args} for i, c in calls]}})
        waits = []
        for call_id, call in calls:
            if call.cancel_after_s is None:
                waits.append(call_id)
            else:
                await asyncio.sleep(call.cancel_after_s)
                self.cancelled.append(call_id)
                await send(session, {"toolCallCancellation": {"ids": [call_id]}})
        if turn.later:
            return turn.heard, turn.ack
        if waits:
            tasks = [asyncio.ensure_future(self._answered[i].wait()) for i in waits]
            _, late = await asyncio.wait(tasks, timeout=self.wait_s)
            for task in late:
                task.cancel()
        return turn.heard, self._answer([i for i, _ in calls])

    def _answer(self, ids: list[str]) -> str:
        said = []
        for r in self.responses:
            if r.get("id") in ids:
                response = r.get("response", {})
                what = response.get("error") or json.dumps(response.get("output", response),
                                                           ensure_ascii=False)
                said.append(f"{r.get('name')}: {what}")
        return "; ".join(said) or "Done."
