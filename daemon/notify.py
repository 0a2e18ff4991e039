"""sd_notify: READY, STATUS, WATCHDOG and STOPPING for systemd; silent when not under systemd."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("pttd.notify")


def _send(message: str) -> None:
    if not os.environ.get("NOTIFY_SOCKET"):
        return
    from systemd import daemon

    try:
        daemon.notify(message)
    except OSError as exc:
        log.debug("sd_notify failed: %s", exc)


def ready(status: str) -> None:
    _send(f"READY=1\nSTATUS={status}")


def status(text: str) -> None:
    _send(f"STATUS={text}")


def watchdog() -> None:
    _send("WATCHDOG=1")


def stopping() -> None:
    _send("STOPPING=1\nSTATUS=stopping")


def watchdog_interval() -> float | None:
    """WatchdogSec in seconds when systemd asks this process for keep-alives, else None."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1_000_000
