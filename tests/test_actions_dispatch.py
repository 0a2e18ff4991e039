"""Function calls answered: same id and name, errors for bad input, cancellation without an
answer, bounded concurrency, and configured commands run as real processes (no shell, own
process group killed on timeout or cancel, output truncated)."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from config.tools import CommandConfig
from daemon.actions import commands, dispatch
from daemon.actions.dispatch import CallError, Dispatcher, Function
from daemon.live.protocol import (
    FunctionCall,
    FunctionResponse,
    ToolCall,
    ToolCallCancellation,
    tool_response,
)


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """An async test body run on a fresh loop (pytest's own signature inspection still sees
    its fixtures)."""
    @functools.wraps(test)
    def sync(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))
    return sync


SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def command(tmp: Path, script: str, timeout_s: float = 5.0, **params: Any) -> CommandConfig:
    path = tmp / "cmd.sh"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    schema = {"type": "object", "required": [], "properties": {
        k: {"type": v} for k, v in params.items()}}
    return CommandConfig("cmd", "a test command", (str(path), *(f"{{{k}}}" for k in params)),
                         schema, timeout_s)


class Rig:
    def __init__(self, functions: list[Function], non_blocking: bool = True) -> None:
        self.sent: list[FunctionResponse] = []
        self.d = Dispatcher({f.name: f for f in functions}, self.sent.extend,
                            non_blocking=non_blocking)

    def call(self, *calls: tuple[str, str, dict[str, Any]]) -> None:
        self.d.handle(ToolCall(tuple(FunctionCall(i, n, a) for i, n, a in calls)))

    async def until(self, n: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.sent) < n:
                await asyncio.sleep(0.01)


def double(args: dict[str, Any]) -> dict[str, Any]:
    if args["n"] < 0:
        raise CallError("n must not be negative")
    return {"twice": args["n"] * 2}


BUILTIN = Function("double", "doubles", SCHEMA, "SILENT", call=double)


def test_built_ins_answer_at_once_with_the_same_id_and_name() -> None:
    rig = Rig([BUILTIN, Function("off", "off", SCHEMA, call=double, enabled=False)])
    rig.call(("a", "double", {"n": 2}), ("b", "double", {"n": -1}), ("c", "nope", {}),
             ("d", "double", {"n": "x"}), ("e", "off", {"n": 1}))
    got = {r.id: r for r in rig.sent}
    assert [(r.id, r.name) for r in rig.sent] == [("a", "double"), ("b", "double"),
                                                   ("c", "nope"), ("d", "double"), ("e", "off")]
    assert got["a"].response == {"output": {"twice": 4}} and got["a"].scheduling == "SILENT"
    assert got["b"].response == {"error": "n must not be negative"}
    assert got["c"].response["error"].startswith("there is no function 'nope' on this speaker")
    assert got["d"].response == {"error": 'bad arguments: n = "x": must be an integer'}
    assert got["e"].response == {"error": "off is switched off on this speaker"}
    # Errors are spoken when the model is free, whatever the function's own scheduling.
    assert {got[i].scheduling for i in "bcde"} == {"WHEN_IDLE"}
    assert rig.d.declarations() == [{"name": "double", "description": "doubles",
                                     "parameters": {"type": "OBJECT", "required": ["n"],
                                                    "properties": {"n": {"type": "INTEGER"}}},
                                     "behavior": "NON_BLOCKING"}]


def test_blocking_models_get_no_behavior_and_no_scheduling() -> None:
    rig = Rig([BUILTIN], non_blocking=False)
    rig.call(("a", "double", {"n": 1}))
    assert rig.sent[0].scheduling is None
    assert "behavior" not in rig.d.declarations()[0]
    assert b'"scheduling"' not in tool_response(rig.sent)


@run
async def test_a_command_runs_without_a_shell_and_its_output_comes_back(tmp_path: Path) -> None:
    cmd = command(tmp_path, 'printf "%s|" "$@"; echo "key=${GEMINI_API_KEY:-none}"',
                  what="string")
    os.environ["GEMINI_API_KEY"] = "AIza-should-not-leak"
    try:
        result = await commands.run(cmd, {"what": "a b; $(touch x)"})
    finally:
        del os.environ["GEMINI_API_KEY"]
    assert result == {"exit_status": 0, "output": "a b; $(touch x)|key=none\n"}
    assert not (Path("/") / "x").exists()


@run
async def test_failing_timed_out_and_chatty_commands(tmp_path: Path) -> None:
    with pytest.raises(commands.CommandFailed) as info:
        await commands.run(command(tmp_path, "echo oops; exit 3"), {})
    assert info.value.result == {"error": "the command failed (exit status 3)",
                                 "exit_status": 3, "output": "oops\n"}
    chatty = await commands.run(command(tmp_path, "head -c 100000 /dev/zero | tr '\\0' x"), {})
    assert len(chatty["output"]) == commands.OUTPUT_LIMIT and chatty["truncated"] is True
    pidfile = tmp_path / "child.pid"
    slow = command(tmp_path, f"sleep 30 & echo $! > {pidfile}; echo started; wait",
                   timeout_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(commands.CommandFailed) as info:
        await commands.run(slow, {})
    assert time.monotonic() - t0 < 3
    assert info.value.result["output"] == "started\n"
    assert "did not finish within 0.5 seconds" in info.value.result["error"]
    # The whole process group went, the background child too.
    child = int(pidfile.read_text())
    await asyncio.sleep(0.1)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(
        f"/proc/{child}/stat").read_text().split()[2]


@run
async def test_cancelled_command_is_killed_and_never_answered(tmp_path: Path) -> None:
    marker = tmp_path / "done"
    cmd = command(tmp_path, f"sleep 5; touch {marker}")
    rig = Rig([Function("cmd", "slow", cmd.parameters, run=lambda a: commands.run(cmd, a))])
    rig.call(("a", "cmd", {}))
    await asyncio.sleep(0.3)
    rig.d.handle(ToolCallCancellation(("a",)))
    await asyncio.sleep(0.3)
    assert rig.d._running == {}
    await asyncio.sleep(0.2)
    assert rig.sent == [] and not marker.exists()


@run
async def test_a_flood_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "MAX_RUNNING", 2)
    monkeypatch.setattr(dispatch, "MAX_QUEUED", 3)
    cmd = command(tmp_path, "sleep 0.3; echo ok")
    rig = Rig([Function("cmd", "slow", cmd.parameters, run=lambda a: commands.run(cmd, a))])
    rig.call(*((str(i), "cmd", {}) for i in range(8)))
    # Three over the limit are refused at once; the rest run two at a time.
    assert [r.id for r in rig.sent] == ["5", "6", "7"]
    assert all("busy" in r.response["error"] for r in rig.sent)
    assert len(rig.d._running) == 2
    rig.d.handle(ToolCallCancellation(("4",)))   # a queued call is simply dropped
    await rig.until(7)
    assert sorted(r.id for r in rig.sent[3:]) == ["0", "1", "2", "3"]
    assert all(r.response == {"output": {"exit_status": 0, "output": "ok\n"}}
               for r in rig.sent[3:])
