"""What a SIGHUP's new config means: which changes apply live, which need a restart, and what
the journal says about it. Pure: the app applies the live part and logs these lines.

    >>> import dataclasses, config
    >>> old = config.parse("")
    >>> new = dataclasses.replace(old, audio=dataclasses.replace(old.audio, preroll_ms=500))
    >>> needs_restart(old, new)
    ['[audio] preroll_ms']
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from config import Config
from daemon.live.client import LiveClient

# What the running daemon takes over from a reloaded config (the app applies each).
APPLIED_LIVE = "volume, earcons, log level and session settings"
# Sections whose devices, sockets or files are set up once, at start.
RESTART_SECTIONS = ("button", "led", "control", "tools", "state")


def needs_restart(old: Config, new: Config) -> list[str]:
    """The changed keys and sections that take effect only after `systemctl restart pttd`."""
    keys = [f"[live] {k}" for k in sorted(LiveClient.RESTART_KEYS)
            if getattr(new.live, k) != getattr(old.live, k)]
    keys += [f"[{section}]" for section in RESTART_SECTIONS
             if getattr(new, section) != getattr(old, section)]
    return keys + [f"[audio] {k}" for k in new.audio.__dataclass_fields__
                   if k != "volume" and getattr(new.audio, k) != getattr(old.audio, k)]


def report(old: Config, new: Config, warnings: Sequence[str]) -> list[tuple[int, str]]:
    """The journal lines (level, message) for a reload from `old` to `new`; `warnings` are the
    new model's, said again only when the model changed."""
    lines = [(logging.WARNING, w) for w in warnings if new.live.model != old.live.model]
    lines.append((logging.INFO, f"config reloaded from {new.path} ({APPLIED_LIVE} apply now)"))
    if restart := needs_restart(old, new):
        lines.append((logging.WARNING,
                      f"these changes need `systemctl restart pttd`: {', '.join(restart)}"))
    return lines
