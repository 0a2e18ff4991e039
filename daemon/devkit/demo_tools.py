"""`pttd demo --tools`: a timer set by voice, heard ringing, and silenced by a press.

The emulator plays the model: it answers the spoken request with a `set_timer` call
(daemon/devkit/tool_script.py); the real daemon runs it, answers, and rings the alarm through
the simulated sound card when the timer ends. This part prints what went back and forth, then
presses the (mock) button while the alarm rings and checks that the press started no turn.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from daemon.devkit.tool_script import DEMO_TURNS

TURNS = DEMO_TURNS[:1]
PHRASES = tuple(t.heard for t in TURNS)
LET_RING_S = 2.5
RING_WAIT_S = 30.0


def show_calls(emu: Any) -> None:
    """The function calls of the turn just ended, and the daemon's answers."""
    calls, responses = emu.call(lambda e: (list(e.tools.calls), list(e.tools.responses)))
    answers = {r["id"]: r for r in responses}
    for call in calls:
        print(f"        model calls:  {call['name']} {json.dumps(call['args'])}")
        answer = answers.get(call["id"])
        if answer is None:
            print("        pttd answers: nothing (yet)")
            continue
        ms = (answer["at"] - call["at"]) * 1000
        print(f"        pttd answers: {json.dumps(answer['response'])} "
              f"(scheduling {answer.get('scheduling', '-')}, {ms:.0f} ms after the call)")


async def ring_and_silence(app: Any, pin: Any, step: str) -> int:
    """Wait for the timer, let it ring, press; 0 if the press silenced it and started no turn."""
    actions = app.actions
    timers = actions.table.timers
    if not timers:
        print("      no timer was set: the function call did not arrive")
        return 1
    due = timers[0].due
    print(f"{step} waiting for the {timers[0].label} timer "
          f"({max(0.0, due - time.time()):.1f} s left)")
    deadline = time.monotonic() + RING_WAIT_S
    while not actions.alarm.ringing:
        if time.monotonic() > deadline:
            print("      the timer did not ring")
            return 1
        await asyncio.sleep(0.005)
    print(f"      the timer rings, {(time.time() - due) * 1000:.0f} ms after it was due; "
          f"the LED shows {app.led.pattern!r}")
    rung = actions.alarm.rung
    await asyncio.sleep(LET_RING_S)
    turns_before = app.turn_log.total
    print(f"      pressing the button after {LET_RING_S:g} s of ringing")
    pin.drive_low()
    while actions.alarm.ringing and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    pin.drive_high()
    await asyncio.sleep(0.3)
    silenced = not actions.alarm.ringing and actions.alarm.rung == rung
    no_turn = app.turn_log.total == turns_before and app.machine.state.value == "idle"
    print(f"      the press {'silenced' if silenced else 'did NOT silence'} the alarm and "
          f"{'started no turn' if no_turn else 'STARTED A TURN'} (state "
          f"{app.machine.state.value}, turns {app.turn_log.total}, LED {app.led.pattern!r})")
    return 0 if silenced and no_turn else 1
