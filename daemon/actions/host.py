"""Local actions wired to the daemon: the model's function calls, the volume, the timers and
their alarm, the state file, and the control socket's `volume` / `timers` / `timer` commands.

The app hands it the playback stream and the LED, and one function that sends tool responses;
it gets back what to declare in setup, the press it must give up while an alarm rings, and the
status fields `volume` and `timers`. Deciding is done by the pure parts (timers.py, volume.py,
schema.py); this shell keeps the clock, the file and the event loop's timer handle.

    actions = Actions(cfg, playback, led, send=app_send_tool_responses)
    live = LiveClient(..., tools=actions.declarations())
    actions.start()                   # on the running loop: state loaded, timers armed
    if actions.take_press(): return   # a press while the alarm rings only silences it
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import config
from config import Config
from daemon.actions import commands, volume
from daemon.actions.alarm import Alarm, Light, Speaker
from daemon.actions.builtins import BUILTINS
from daemon.actions.dispatch import CallError, Dispatcher, Function
from daemon.actions.state import Saved, StateStore
from daemon.actions.timers import TimerError, TimerTable, human, parse_duration, restore
from daemon.live.models import rules_for
from daemon.live.protocol import FunctionResponse, ToolCall, ToolCallCancellation

log = logging.getLogger("pttd.actions")

# A timer that ended while the daemon was down rings at start if it ended at most this long ago.
MISSED_GRACE_S = 300.0
# call_at may wake a hair before the wall clock says the timer is due.
EARLY_S = 0.01
CONTROL = ("volume", "timers", "timer")


class Gain(Protocol):
    def set_volume(self, volume: float) -> None: ...


class PlaybackLike(Speaker, Gain, Protocol):
    pass


class Actions:
    """The model's function calls and the control socket's volume and timer commands, carried out.

    One object so the volume, the timers and their alarm share one state file and one clock;
    see the module docstring for how the app wires it.
    """

    def __init__(self, cfg: Config, playback: PlaybackLike, led: Light,
                 send: Callable[[list[FunctionResponse]], None]) -> None:
        self._playback = playback
        self._base = cfg.audio.volume
        self.level = 1.0
        self._level_set = False
        self.store = StateStore(config.state_dir(cfg))
        self.table = TimerTable()
        self.alarm = Alarm(playback, led, floor=volume.alarm_gain(cfg.audio.volume))
        self._handle: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[None] | None = None
        self._dirty = False
        self._save_failed = False
        tools = cfg.tools
        handlers = {"set_volume": self._set_volume, "change_volume": self._change_volume,
                    "set_timer": self._set_timer, "cancel_timer": self._cancel_timer,
                    "list_timers": self._list_timers}
        functions = [replace(b, call=handlers[b.name],
                             enabled=tools.enabled and b.name not in tools.disabled)
                     for b in BUILTINS]
        functions += [Function(c.name, c.description, c.parameters, "WHEN_IDLE",
                               run=lambda args, c=c: commands.run(c, args),
                               enabled=tools.enabled and c.name not in tools.disabled)
                      for c in tools.command]
        self.dispatcher = Dispatcher({f.name: f for f in functions}, send,
                                     non_blocking=rules_for(cfg.live.model).non_blocking_tools)

    def declarations(self) -> list[dict[str, Any]]:
        return self.dispatcher.declarations()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load the saved volume and timers (on the running loop); ring what ended meanwhile."""
        saved = self.store.load()
        if saved.volume is not None:
            self.level, self._level_set = saved.volume, True
        self._apply_volume()
        self.table, late, missed = restore(saved.timers, time.time(), MISSED_GRACE_S)
        for timer in missed:
            log.warning("%s ended at %s while pttd was not running; not rung", timer.name(),
                        time.strftime("%H:%M:%S", time.localtime(timer.due)))
        if self.table.timers:
            log.info("%d timer(s) restored from %s", len(self.table.timers), self.store.path)
        for timer in late:
            self._ring(timer.label, timer.due)
        if late or missed:
            self._save()
        self._arm()

    async def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self.alarm.silence("pttd stopping")
        await self.dispatcher.close()
        if self._writer is not None:
            await self._writer

    def set_base_volume(self, base: float) -> None:
        """[audio] volume changed on reload: the gain at 100 %."""
        self._base = base
        self.alarm.floor = volume.alarm_gain(base)
        self._apply_volume()

    # ------------------------------------------------------------ inputs

    def handle(self, event: ToolCall | ToolCallCancellation) -> None:
        self.dispatcher.handle(event)

    def take_press(self) -> bool:
        """A press while the alarm rings silences it and is not a turn; True if so."""
        return self.alarm.silence("press")

    def status(self) -> dict[str, Any]:
        now = time.time()
        ringing = [{"label": label, "left_s": 0.0, "ringing": True}
                   for label in self.alarm.labels]
        return {"volume": self.level,
                "timers": ringing + [t | {"ringing": False} for t in self.table.listing(now)]}

    def control(self, verb: str, rest: str) -> dict[str, Any]:
        """`volume [N|+N|-N]`, `timers`, `timer DURATION [LABEL]`, `timer cancel [LABEL]`."""
        try:
            if verb == "volume" and rest:
                if not rest.lstrip("+-").isdigit():
                    raise ValueError(f"volume {rest!r}: give a percentage 0-100, or +N / -N "
                                     "to change it")
                if rest[0] in "+-":
                    result = self._change_volume({"delta": int(rest)})
                else:
                    result = self._set_volume({"percent": int(rest)})
            elif verb == "timer":
                word, _, label = rest.partition(" ")
                if word.lower() == "cancel":
                    result = self._cancel_timer({"label": label} if label.strip() else {})
                else:
                    result = self._set_timer({"seconds": parse_duration(word), "label": label})
            else:
                result = {}
        except (CallError, ValueError) as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "result": result}

    # ------------------------------------------------------------ built-in functions

    def _apply_volume(self) -> None:
        self._playback.set_volume(volume.gain(self.level, self._base))

    def _volume_to(self, level: float) -> dict[str, Any]:
        was, self.level, self._level_set = self.level, level, True
        self._apply_volume()
        self._save()
        log.info("volume %d %%", round(level * 100), extra={"PTTD_VOLUME": level})
        return {"volume_percent": round(level * 100), "was_percent": round(was * 100)}

    def _set_volume(self, args: dict[str, Any]) -> dict[str, Any]:
        if not 0 <= args["percent"] <= 100:
            raise CallError("the volume is 0 to 100 percent")
        return self._volume_to(volume.set_percent(args["percent"]))

    def _change_volume(self, args: dict[str, Any]) -> dict[str, Any]:
        if not -100 <= args["delta"] <= 100:
            raise CallError("a volume change is -100 to 100 percentage points")
        return self._volume_to(volume.change(self.level, args["delta"]))

    def _set_timer(self, args: dict[str, Any]) -> dict[str, Any]:
        label = args.get("label", "")
        replaced = self.table.replaced(label)
        try:
            timer = self.table.add(args["seconds"], label, time.time())
        except TimerError as exc:
            raise CallError(str(exc)) from None
        self._changed()
        log.info("%s set for %s", timer.name(), human(timer.seconds),
                 extra={"PTTD_TIMER": timer.label, "PTTD_TIMER_S": timer.seconds})
        return {"label": timer.label, "seconds": timer.seconds, "rings_in": human(timer.seconds),
                "replaced": replaced is not None}

    def _cancel_timer(self, args: dict[str, Any]) -> dict[str, Any]:
        label = args.get("label")
        if self.alarm.ringing and (not label or any(
                label.strip().lower() in ringing.lower() for ringing in self.alarm.labels)):
            stopped = list(self.alarm.labels)
            self.alarm.silence("cancelled")
            return {"stopped_ringing": stopped}
        try:
            timer = self.table.cancel(label)
        except TimerError as exc:
            raise CallError(str(exc)) from None
        self._changed()
        left = max(0.0, timer.due - time.time())
        log.info("%s cancelled with %s left", timer.name(), human(left),
                 extra={"PTTD_TIMER": timer.label})
        return {"cancelled": timer.label or timer.name(), "left": human(left)}

    def _list_timers(self, args: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        timers = [{"label": t["label"], "left": human(t["left_s"])}
                  for t in self.table.listing(now)]
        return {"timers": timers, "ringing": list(self.alarm.labels)}

    # ------------------------------------------------------------ timers on the loop

    def _changed(self) -> None:
        self._save()
        self._arm()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        due = self.table.next_due()
        if due is None:
            return
        loop = asyncio.get_running_loop()
        self._handle = loop.call_at(loop.time() + max(0.0, due - time.time()), self._fire)

    def _fire(self) -> None:
        self._handle = None
        now = time.time()
        for timer in self.table.pop_due(now + EARLY_S):
            self._ring(timer.label, timer.due)
        self._changed()

    def _ring(self, label: str, due: float) -> None:
        late_ms = round((time.time() - due) * 1000)
        log.info("timer %s rings", repr(label) if label else "(no label)",
                 extra={"PTTD_TIMER": label, "PTTD_TIMER_LATE_MS": late_ms})
        self.alarm.ring(label)

    # ------------------------------------------------------------ the state file

    def _save(self) -> None:
        """Write the state soon, off the loop; writes never overlap and the last one wins."""
        self._dirty = True
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while self._dirty:
            self._dirty = False
            saved = Saved(self.level if self._level_set else None, self.table.timers)
            try:
                await asyncio.to_thread(self.store.save, saved)
            except OSError as exc:
                if not self._save_failed:
                    log.error("cannot write %s (%s): the volume and timers will not survive a "
                              "restart; set [state] dir or the unit's StateDirectory=",
                              self.store.path, exc.strerror or exc)
                self._save_failed = True
            else:
                self._save_failed = False
