"""When the cycle collector runs in `pttd run`.

Start-up creates some 36,000 long-lived objects: modules, classes, numpy's tables. While the
imports run, the collector's thresholds trip about 90 young and 7-8 middle-generation passes
(counted with gc.callbacks; 9-10 ms of start -> READY on the bench VM), and every full pass
after that walks all of start-up's objects again (10-11 ms there), holding the GIL that the
capture and playback threads need. So the daemon holds the collector off while it starts, then
collects once and freezes what survived: later passes see only what it allocated since.
"""

from __future__ import annotations

import gc
from typing import Any

# gc.get_freeze_count() walks the whole frozen list (0.8 ms for start-up's objects here): count
# once, when freezing, not at every `pttd status`.
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
