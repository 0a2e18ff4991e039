"""The functions every pttd offers the model: their names, arguments, descriptions and what a
non-blocking model should do with each answer. The names and arguments are contract
(docs/DESIGN.md); the behaviour is in daemon/actions/host.py.

`scheduling` (for models that run functions NON_BLOCKING): the volume changes are heard, so
their answers go into the context SILENTly; a timer set or cancelled, or the list, is something
the user wants confirmed, so the model speaks WHEN_IDLE, after what it is saying. The host
gives each its `call`.
"""

from __future__ import annotations

from typing import Any

from daemon.actions.dispatch import Function
from daemon.actions.timers import MAX_SECONDS


def _object(required: tuple[str, ...] = (), **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required)}


BUILTINS = (
    Function("set_volume", "Set the speaker's volume, in percent (0 is silent, 100 the loudest).",
            _object(("percent",), percent={"type": "integer", "minimum": 0, "maximum": 100,
                                           "description": "the new volume, 0-100"}),
            "SILENT"),
    Function("change_volume", "Make the speaker louder (positive delta) or quieter (negative "
            "delta), in percentage points; about 10-20 for \"a bit\".",
            _object(("delta",), delta={"type": "integer", "minimum": -100, "maximum": 100,
                                       "description": "percentage points to add, -100 to 100"}),
            "SILENT"),
    Function("set_timer", "Start a countdown timer that rings on this speaker when it ends. A "
            "timer with the same label replaces the old one.",
            _object(("seconds",),
                    seconds={"type": "number", "minimum": 1, "maximum": MAX_SECONDS,
                             "description": "how long, in seconds"},
                    label={"type": "string",
                           "description": "optional short name, e.g. \"tea\" or \"pasta\""}),
            "WHEN_IDLE"),
    Function("cancel_timer", "Cancel a timer. Without a label: the only timer, or else the one "
            "that would ring next. Also stops a timer that is ringing.",
            _object(label={"type": "string", "description": "the label of the timer to cancel"}),
            "WHEN_IDLE"),
    Function("list_timers", "List the running timers with the time left on each.", _object(),
            "WHEN_IDLE"),
)
