"""What outlives a restart (the volume and the pending timers), in one small JSON file under the
state directory (`[state] dir`, systemd's StateDirectory=pttd).

Written atomically (a temporary file in the same directory, fsync, rename, fsync of the
directory), so a power cut leaves the old file or the new one, never half of either. A file that
cannot be read is set aside as `state.json.bad` and the daemon starts with defaults: a broken
file must not keep a speaker from starting.

    store = StateStore(Path("/var/lib/pttd"))
    saved = store.load()
    store.save(Saved(volume=0.4, timers=()))
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.actions.timers import Timer

log = logging.getLogger("pttd.actions")

FILE = "state.json"
VERSION = 1


@dataclass(frozen=True, slots=True)
class Saved:
    """The state as kept on disk; `volume` None until someone sets it."""

    volume: float | None = None
    timers: tuple[Timer, ...] = ()


def encode(saved: Saved) -> str:
    body: dict[str, Any] = {"version": VERSION, "timers": [
        {"label": t.label, "due": t.due, "seconds": t.seconds} for t in saved.timers]}
    if saved.volume is not None:
        body["volume"] = saved.volume
    return json.dumps(body, ensure_ascii=False, indent=1) + "\n"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def decode(text: str) -> tuple[Saved, list[str]]:
    """The saved state, and what in it was unusable (skipped, each with a reason)."""
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    problems = []
    volume = body.get("volume")
    if volume is not None and not (_number(volume) and 0 <= volume <= 1):
        problems.append(f"volume {volume!r} is not 0.0-1.0")
        volume = None
    timers = []
    for entry in body.get("timers", []):
        if (isinstance(entry, dict) and isinstance(entry.get("label", ""), str)
                and _number(entry.get("due")) and _number(entry.get("seconds"))):
            timers.append(Timer(entry.get("label", ""), float(entry["due"]),
                                float(entry["seconds"])))
        else:
            problems.append(f"timer entry {str(entry)[:60]} is malformed")
    return Saved(volume, tuple(timers)), problems


class StateStore:
    """The state file in `directory`; see the module docstring."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.path = directory / FILE

    def load(self) -> Saved:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Saved()
        except OSError as exc:
            log.error("cannot read %s (%s); starting with the default volume and no timers",
                      self.path, exc.strerror or exc)
            return Saved()
        try:
            saved, problems = decode(text)
        except (ValueError, UnicodeDecodeError) as exc:
            bad = self.path.with_name(FILE + ".bad")
            with contextlib.suppress(OSError):
                os.replace(self.path, bad)
            log.error("%s is not valid state (%s); set aside as %s, starting with the default "
                      "volume and no timers", self.path, exc, bad.name)
            return Saved()
        for problem in problems:
            log.warning("%s: %s; skipped", self.path, problem)
        return saved

    def save(self, saved: Saved) -> None:
        """Replace the file atomically; OSError when the directory cannot be written."""
        self.dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{FILE}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(encode(saved))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
