"""When the cycle collector runs in `pttd run`.

Start-up creates tens of thousands of long-lived objects: modules, classes, numpy's tables.
While the imports run, they trip the collector's thresholds again and again, and every full pass
after that walks all of start-up's objects once more, holding the GIL that the capture and
playback threads need (the figures: tests/bench/results.md, "Start -> READY (stop 15)"). So
the daemon holds the collector off while it starts, then collects once and freezes what
survived: later passes see only what it allocated since.

    heap.hold()       # first thing in `pttd run`, before the heavy imports
    ...               # import, open the devices, set up the session
    heap.settle()     # once ready: collect once, freeze the survivors
"""

from __future__ import annotations

import gc
from typing import Any

# gc.get_freeze_count() walks the whole frozen list, which costs every `pttd status` the length
# of start-up's objects: count once, when freezing.
_frozen = 0


def hold() -> None:
    """No collections from here until `settle()`: call before the heavy imports."""
    gc.disable()


def settle() -> None:
    """Free start-up's garbage, exempt the survivors from every later pass, and resume."""
    global _frozen
    gc.collect()
    gc.freeze()
    gc.enable()
    _frozen = gc.get_freeze_count()


def summary() -> dict[str, Any]:
    """For `pttd status`: whether the collector runs, what is frozen, passes per generation."""
    return {"enabled": gc.isenabled(), "frozen": _frozen,
            "collections": [generation["collections"] for generation in gc.get_stats()]}
