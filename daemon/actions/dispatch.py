"""The model's function calls, answered: each `toolCall` checked, run and answered with a
`toolResponse` carrying the same `id` and `name`, and each `toolCallCancellation` honoured.

Built-in functions answer at once, on the event loop (they only change a table or a number);
commands run as tasks, at most MAX_RUNNING at a time with MAX_QUEUED more waiting, so a flood of
calls costs a bounded amount. Whatever goes wrong (an unknown or disabled function, arguments
that do not fit, a command that fails or times out, a full queue) is answered with an `error`
for the model to read out, and one journal line: nothing raises into the daemon.

    dispatcher = Dispatcher(functions, send=app_send, non_blocking=True)
    dispatcher.handle(tool_call_event)      # from the Live client's event callback
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from daemon.actions.commands import CommandFailed
from daemon.actions.schema import ArgumentError, to_wire, validate
from daemon.live.protocol import FunctionCall, FunctionResponse, ToolCall, ToolCallCancellation

log = logging.getLogger("pttd.actions")

MAX_RUNNING = 4
MAX_QUEUED = 16
ARGS_SHOWN = 200


class CallError(Exception):
    """A built-in function refusing a call; the message is for the model."""


@dataclass(frozen=True)
class Function:
    """One function the model may call: a built-in (`call`, answers at once) or a command
    (`run`, awaited). `scheduling` tells a non-blocking model what to do with the answer."""

    name: str
    description: str
    schema: Mapping[str, Any]
    scheduling: str = "WHEN_IDLE"
    call: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    run: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
    enabled: bool = True


class _Job:
    """A command's call while it waits or runs (a plain class: built once per call, and a
    dataclass would cost start-up time to generate)."""

    __slots__ = ("args", "call", "function", "started", "task")

    def __init__(self, call: FunctionCall, function: Function, args: dict[str, Any],
                 started: float) -> None:
        self.call = call
        self.function = function
        self.args = args
        self.started = started
        self.task: asyncio.Task[None] | None = None


def declaration(fn: Function, non_blocking: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": fn.name, "description": fn.description}
    if fn.schema.get("properties"):
        out["parameters"] = to_wire(fn.schema)
    if non_blocking:
        out["behavior"] = "NON_BLOCKING"
    return out


class Dispatcher:
    """See the module docstring."""

    def __init__(self, functions: Mapping[str, Function],
                 send: Callable[[list[FunctionResponse]], None], *, non_blocking: bool) -> None:
        self.functions = dict(functions)
        self.non_blocking = non_blocking
        self.calls = 0
        self._send = send
        self._running: dict[str, _Job] = {}
        self._queue: deque[_Job] = deque()

    def declarations(self) -> list[dict[str, Any]]:
        """What setup's `functionDeclarations` lists: the enabled functions."""
        return [declaration(f, self.non_blocking) for f in self.functions.values() if f.enabled]

    def handle(self, event: ToolCall | ToolCallCancellation) -> None:
        if isinstance(event, ToolCallCancellation):
            for call_id in event.ids:
                self._cancel(call_id)
            return
        answers = [a for a in (self._start(call) for call in event.calls) if a is not None]
        if answers:
            self._send(answers)

    async def close(self) -> None:
        """Stop every command (killing its process group) and drop the queue; no answers."""
        self._queue.clear()
        tasks = [j.task for j in self._running.values() if j.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------ one call

    def _start(self, call: FunctionCall) -> FunctionResponse | None:
        """The answer now, or None when a command was started or queued."""
        self.calls += 1
        started = time.monotonic()
        fn = self.functions.get(call.name)
        if fn is None:
            known = ", ".join(f.name for f in self.functions.values() if f.enabled)
            return self._error(call, None, started, f"there is no function {call.name!r} on "
                               f"this speaker; it has: {known or 'none'}")
        if not fn.enabled:
            return self._error(call, fn, started, f"{fn.name} is switched off on this speaker")
        try:
            args = validate(fn.schema, call.args)
        except ArgumentError as exc:
            return self._error(call, fn, started, f"bad arguments: {exc}")
        if fn.call is not None:
            try:
                result = fn.call(args)
            except CallError as exc:
                return self._error(call, fn, started, str(exc))
            except Exception as exc:
                log.exception("built-in function %s failed", fn.name)
                return self._error(call, fn, started, f"internal error ({type(exc).__name__})")
            return self._answer(call, fn, started, {"output": result})
        if call.id in self._running or any(j.call.id == call.id for j in self._queue):
            return self._error(call, fn, started, f"call id {call.id!r} is already running")
        job = _Job(call, fn, args, started)
        if len(self._running) < MAX_RUNNING:
            self._launch(job)
        elif len(self._queue) < MAX_QUEUED:
            self._queue.append(job)
        else:
            return self._error(call, fn, started, "busy: too many commands are running; try "
                               "again later")
        return None

    def _launch(self, job: _Job) -> None:
        self._running[job.call.id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job),
                                                         name=f"function {job.function.name}")
        job.task.add_done_callback(lambda task: self._done(job, task))

    async def _run(self, job: _Job) -> None:
        assert job.function.run is not None
        try:
            result = await job.function.run(job.args)
        except CommandFailed as exc:
            answer = self._reply(job.call, job.function, job.started, exc.result, str(exc))
        except Exception as exc:
            log.exception("command %s failed", job.function.name)
            answer = self._error(job.call, job.function, job.started,
                                 f"internal error ({type(exc).__name__})")
        else:
            answer = self._answer(job.call, job.function, job.started, {"output": result})
        self._send([answer])

    def _done(self, job: _Job, task: asyncio.Task[None]) -> None:
        """A command's task ended: answered, or cancelled (then no answer goes out)."""
        self._running.pop(job.call.id, None)
        if task.cancelled():
            self._record(job.call, job.function, job.started, "cancelled")
        while self._queue and len(self._running) < MAX_RUNNING:
            self._launch(self._queue.popleft())

    def _cancel(self, call_id: str) -> None:
        for job in self._queue:
            if job.call.id == call_id:
                self._queue.remove(job)
                self._record(job.call, job.function, job.started, "cancelled")
                return
        job_running = self._running.get(call_id)
        if job_running is not None and job_running.task is not None:
            job_running.task.cancel()
        else:
            log.debug("cancellation of call %r, which is not running, ignored", call_id)

    # ------------------------------------------------------------ answers and records

    def _answer(self, call: FunctionCall, fn: Function, started: float,
                response: dict[str, Any]) -> FunctionResponse:
        return self._reply(call, fn, started, response, "")

    def _error(self, call: FunctionCall, fn: Function | None, started: float,
               message: str) -> FunctionResponse:
        return self._reply(call, fn, started, {"error": message}, message)

    def _reply(self, call: FunctionCall, fn: Function | None, started: float,
               response: dict[str, Any], error: str) -> FunctionResponse:
        self._record(call, fn, started, "error" if error else "ok", error)
        scheduling = None
        if self.non_blocking:
            scheduling = "WHEN_IDLE" if error or fn is None else fn.scheduling
        return FunctionResponse(call.id, call.name, response, scheduling)

    @staticmethod
    def _record(call: FunctionCall, fn: Function | None, started: float, outcome: str,
                error: str = "") -> None:
        ms = round((time.monotonic() - started) * 1000)
        shown = json.dumps(call.args, ensure_ascii=False, default=str)
        if len(shown) > ARGS_SHOWN:
            shown = shown[:ARGS_SHOWN - 3] + "..."
        fields = {"PTTD_TOOL": call.name[:64], "PTTD_TOOL_ID": call.id[:64],
                  "PTTD_TOOL_ARGS": shown, "PTTD_TOOL_OUTCOME": outcome, "PTTD_TOOL_MS": ms}
        if error:
            fields["PTTD_TOOL_ERROR"] = error
        level = logging.WARNING if outcome == "error" else logging.INFO
        what = "command" if fn is not None and fn.run is not None else "function"
        log.log(level, "%s %s(%s): %s%s in %d ms", what, call.name[:64], shown, outcome,
                f" ({error})" if error else "", ms, extra=fields)
