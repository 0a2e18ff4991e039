"""Configured commands (`[[tools.command]]`): the model's arguments put into argv, the program run
with no shell, its output and exit status returned.

Each command runs in a process group of its own, so a timeout or a cancelled call kills
everything it started, not just the first process. It inherits the daemon's user and sandbox
(the unit's), but not its environment: the API key may be in that, so the command gets a small
fixed one instead. Output (stdout and stderr together) is kept up to OUTPUT_LIMIT bytes; the
rest is read and dropped, so a chatty program never blocks on a full pipe.

    result = await run(command, {"state": "on"})   # {"exit_status": 0, "output": "..."}
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from typing import Any

from config.tools import PLACEHOLDER, CommandConfig

OUTPUT_LIMIT = 4096
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


class CommandFailed(Exception):
    """The command did not succeed; `result` is what the model is told."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def argv_for(command: CommandConfig, args: Mapping[str, Any]) -> list[str]:
    """argv with each "{name}" item replaced, whole, by that argument; an item for an optional
    argument the model left out is dropped."""
    out = []
    for item in command.argv:
        m = PLACEHOLDER.fullmatch(item)
        if m is None:
            out.append(item)
        elif m.group(1) in args:
            out.append(_text(args[m.group(1)]))
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


async def _read(stream: asyncio.StreamReader, keep: bytearray) -> bool:
    """Read to EOF, keeping the first OUTPUT_LIMIT bytes; True if more came."""
    more = False
    while chunk := await stream.read(65536):
        room = OUTPUT_LIMIT - len(keep)
        keep += chunk[:max(0, room)]
        more = more or len(chunk) > room
    return more


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def run(command: CommandConfig, args: Mapping[str, Any]) -> dict[str, Any]:
    """Run the command; its result, or CommandFailed (cannot start, non-zero exit, timeout)."""
    argv = argv_for(command, args)
    env = {**ENV, "PTTD_FUNCTION": command.name}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=env, cwd="/", process_group=0)
    except OSError as exc:
        raise CommandFailed(f"cannot start {argv[0]}: {exc.strerror or exc}",
                            {"error": f"the command could not be started ({exc.strerror})"}
                            ) from None
    assert proc.stdout is not None
    output = bytearray()
    try:
        async with asyncio.timeout(command.timeout_s):
            truncated = await _read(proc.stdout, output)
            status = await proc.wait()
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        text = output.decode("utf-8", "replace")
        raise CommandFailed(f"timed out after {command.timeout_s:g} s; killed",
                            {"error": f"the command did not finish within {command.timeout_s:g} "
                                      "seconds and was stopped", "output": text}) from None
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(proc.wait())
        raise
    result: dict[str, Any] = {"exit_status": status, "output": output.decode("utf-8", "replace")}
    if truncated:
        result["truncated"] = True
    if status != 0:
        reason = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        raise CommandFailed(reason, {"error": f"the command failed ({reason})", **result})
    return result
