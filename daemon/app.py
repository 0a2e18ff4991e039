"""`pttd run`: wires config -> hw -> Live session -> turn machine, under systemd.

The app only moves data and carries out the turn machine's actions: every decision about what
a press or a server event means lives in `daemon/turns.py`. Threads (capture, playback, gpiozero)
hand their events to the event loop with `call_soon_threadsafe`; nothing else crosses threads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import config
from config import EX_CONFIG, Config, ConfigError
from config.apikey import ApiKey, resolve
from daemon import heap, journal, notify, reloading, server_events, turns
from daemon.actions.host import CONTROL, Actions
from daemon.control import ControlServer
from daemon.live import models, protocol
from daemon.live.client import LiveClient
from daemon.sender import Sender
from daemon.stats import Stats
from daemon.status import Snapshot
from daemon.turn_record import TurnLog, TurnRecord
from hw import realtime
from hw.capture import Capture, capture_ring
from hw.gpio import ButtonInput, StatusLed
from hw.playback import Playback

log = logging.getLogger("pttd.app")

# READY=1 waits at most this long for the first session and the devices; after it the daemon
# reports READY with a STATUS saying it runs degraded, so boot never hangs on the network.
READY_WAIT_S = 15.0
# A reply that has not begun this long after the user finished speaking fails the turn.
REPLY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 1.5


class App:
    """The running daemon: devices, Live session, button and control socket, carrying out what
    the turn machine decides until SIGTERM (`stop()`); SIGHUP is `reload()`. The demo and the
    end-to-end tests run this same daemon on virtual devices and the emulator:

        cfg = config.load()
        exit_status = asyncio.run(App(cfg, resolve(cfg)).run())
    """

    def __init__(self, cfg: Config, key: ApiKey, *,
                 on_turn: Callable[[TurnRecord], None] | None = None,
                 on_ready: Callable[[], None] | None = None) -> None:
        self.cfg = cfg
        self.stats = Stats()
        self.on_turn = on_turn
        self._on_ready = on_ready  # called once, after READY=1
        a = cfg.audio
        self.ring = capture_ring(a)
        self.capture = Capture(a, self.ring, on_status=self._device_status("microphone"))
        self.playback = Playback(a, cfg.earcons, on_status=self._device_status("speaker"),
                                 on_drained=self._threadsafe(
                                     functools.partial(self._feed, turns.PlaybackDrained())))
        self.playback.on_written = self.stats.receive_to_alsa.record
        self.playback.on_prebuffered = self.stats.prebuffer_wait.record
        self.led = self._open_led(cfg)
        self.actions = Actions(cfg, self.playback, self.led, self._send_tool_responses)
        self.live = LiveClient(cfg.live, key, on_event=self._on_live_event,
                               on_state=self._on_session_state,
                               tools=self.actions.declarations())
        self.sender = Sender(self.live, self.capture, self.ring, self.stats,
                             on_failed=lambda why: self._feed(turns.SendFailed(why)),
                             tail_ms=a.tail_ms)
        self.machine = turns.TurnMachine(audio_replies=cfg.live.response_modality == "AUDIO",
                                         button_mode=cfg.button.mode,
                                         may_stay_silent=models.proactive(cfg.live))
        self.button: ButtonInput | None = None
        self.control = ControlServer(cfg.control.socket, self._control)
        self.turn_log = TurnLog()
        self.problem = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = asyncio.Event()
        # Set on every session/device change and on stop(): READY=1 goes out the moment all are up.
        self._changed = asyncio.Event()
        # Set once READY=1 has gone out: the session, the devices and the button all tried.
        self.started = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._edge = 0.0

    @staticmethod
    def _open_led(cfg: Config) -> StatusLed:
        try:
            return StatusLed(cfg.led)
        except Exception as exc:  # as for the button: the speaker works without its LED
            log.error("status LED on %s unavailable (%s: %s); running without it",
                      cfg.led.pin, type(exc).__name__, exc)
            return StatusLed(dataclasses.replace(cfg.led, pin=""))

    # ------------------------------------------------------------ threads -> loop

    def _threadsafe(self, fn: Callable[..., None]) -> Callable[..., None]:
        def call(*args: Any) -> None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(fn, *args)
        return call

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._install_signals()
        self.led.show("offline")
        self.capture.start()
        self.playback.start()
        # After the device threads started, which keep the normal policy (see hw.realtime).
        realtime.claim("the event loop")
        await self.control.start()
        self.actions.start()
        self._tasks = [asyncio.create_task(self.live.run(), name="live"),
                       asyncio.create_task(self.sender.run(), name="sender"),
                       asyncio.create_task(self._watchdog(), name="watchdog")]
        if self.cfg.button.enabled:
            # Off the loop, while the session's handshake is in flight: importing gpiozero and
            # setting up its pin factory takes about as long as the handshake does on a Pi,
            # and READY=1 (below) waits for both.
            self.button = await asyncio.to_thread(self._open_button)
        await self._ready()
        await self._stop.wait()
        await self._shutdown()
        return 0

    def _open_button(self) -> ButtonInput | None:
        try:
            return ButtonInput(self.cfg.button, self._threadsafe(self._pressed),
                               self._threadsafe(functools.partial(self._feed, turns.Release())))
        except Exception as exc:  # gpiozero raises many kinds: no factory, pin in use, ...
            self.problem = f"button on {self.cfg.button.pin} unavailable"
            log.error("button on %s unavailable (%s: %s); pttd runs without it: `pttd press` "
                      "still works. On a Pi 5 install python3-lgpio; without GPIO set [button] "
                      "enabled = false", self.cfg.button.pin, type(exc).__name__, exc)
            return None

    async def _ready(self) -> None:
        """READY=1 once the session and both devices are up, on stop, or after READY_WAIT_S;
        re-checked on every state change (`_changed`), not polled."""
        deadline = time.monotonic() + READY_WAIT_S
        while not self._snapshot().healthy and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._changed.wait()
        line = self._snapshot().line()
        notify.ready(line)
        self.started.set()
        log.info("pttd ready: %s", line, extra={"PTTD_STATE": self.machine.state.value})
        if self._on_ready is not None:
            self._on_ready()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()

    async def _shutdown(self) -> None:
        notify.stopping()
        log.info("stopping")
        if self.button is not None:
            self.button.close()
        self.sender.cancel()
        await self.actions.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.live.close(), STOP_TIMEOUT_S)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.control.close()
        await asyncio.gather(asyncio.to_thread(self.capture.stop),
                             asyncio.to_thread(self.playback.stop))
        self.led.close()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
            loop.add_signal_handler(signal.SIGHUP, self.reload)

    async def _watchdog(self) -> None:
        """WATCHDOG=1 from the loop itself: a stalled loop stops the heartbeat and systemd acts."""
        interval = notify.watchdog_interval()
        if interval is None:
            return
        while True:
            notify.watchdog()
            await asyncio.sleep(interval / 2)

    def reload(self) -> None:
        """SIGHUP: apply what can change live, name what needs a restart."""
        try:
            new = config.load(self.cfg.path)
            warnings = models.validate(new.live, new.path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            return
        journal.set_level(new.log.level)
        self.actions.set_base_volume(new.audio.volume)
        self.playback.set_earcons(new.earcons)
        self.live.update_config(new.live)
        old, self.cfg = self.cfg, new
        for level, line in reloading.report(old, new, warnings):
            log.log(level, "%s", line)

    # ------------------------------------------------------------ status

    def _snapshot(self) -> Snapshot:
        cap, pb, a, live = self.capture, self.playback, self.cfg.audio, self.live
        return Snapshot(
            state=self.machine.state.value, session=live.state,
            problems=(self.problem, live.problem), turns=self.turn_log.total,
            outcomes=self.turn_log.outcomes, capture_online=cap.online,
            capture_device=a.capture_device, capture_granted=cap.granted,
            overruns=cap.overruns, samples=self.ring.head,
            playback_online=pb.online, playback_device=a.playback_device,
            playback_granted=pb.granted, underruns=pb.underruns, playing=pb.playing,
            frames=self.sender.frames, wakeups=self.sender.wakeups, connections=live.connections)

    def _publish_state(self) -> None:
        notify.status(self._snapshot().line())

    def status(self, *, stats: bool = True) -> dict[str, Any]:
        """The daemon's state; `stats` adds the latency summaries (percentiles: not free)."""
        answer = self._snapshot().document() | {
            "tasks": len(asyncio.all_tasks()), "gc": heap.summary(), **self.actions.status()}
        if stats:
            answer["stats"] = self.stats.summary()
        return answer

    def _control(self, command: str) -> dict[str, Any]:
        verb, _, rest = command.partition(" ")
        if verb in CONTROL:
            answer = self.actions.control(verb, rest.strip())
            return answer if not answer["ok"] else self.status(stats=False) | answer
        if command == "press":
            self._pressed(time.monotonic())
        elif command == "release":
            self._feed(turns.Release())
        elif command != "status":
            return {"ok": False, "error": f"unknown command {command!r}; "
                                          "use press, release or status"}
        return self.status(stats=command == "status")

    # ------------------------------------------------------------ inputs -> machine

    def _pressed(self, edge: float | None = None) -> None:
        if self.actions.take_press():
            return
        self._edge = edge if edge is not None else time.monotonic()
        self._feed(turns.Press())

    def _device_status(self, what: str) -> Callable[[bool, str], None]:
        """The device thread's `on_status` for the microphone or the speaker."""
        def changed(online: bool, message: str) -> None:
            log.log(logging.INFO if online else logging.ERROR, "%s %s: %s", what,
                    "online" if online else "offline", message)
            self._feed(turns.DeviceStatus(what, online))
            self._publish_state()  # the turn state may stay as it was: STATUS= must still say it
            self._changed.set()
        return self._threadsafe(changed)

    def _on_session_state(self, state: str) -> None:
        self._feed(turns.SessionReady() if state == "ready" else turns.SessionLost(state))
        self._changed.set()
        self._publish_state()   # the session's state (and its problem) are in STATUS=

    def _on_live_event(self, event: protocol.Event) -> None:
        if type(event) is protocol.AudioChunk and self.machine.reply_chunk_plays():
            self._play(event.data, event.rate)  # most of a reply: nothing but its sound to move
            return
        match event:
            case protocol.ToolCall() | protocol.ToolCallCancellation():
                self.actions.handle(event)
            case protocol.Unknown():
                log.debug("unknown server message keys %s ignored", ", ".join(event.keys))
        if (turn := server_events.turn_event(event, self.turn_log.notes)) is not None:
            self._feed(turn)

    def _send_tool_responses(self, responses: list[protocol.FunctionResponse]) -> None:
        """The one way function results go back to the model (daemon/actions)."""
        if not self.live.send_tool_response(responses):
            log.warning("answer to %s not sent: no Live session is ready",
                        ", ".join(r.name for r in responses))

    def _feed(self, event: turns.Event) -> None:
        before = self.machine.state
        for action in self.machine.handle(event):
            self._execute(action)
        if self.machine.state != before:
            log.debug("state %s -> %s", before.value, self.machine.state.value,
                      extra={"PTTD_STATE": self.machine.state.value})
            self._publish_state()

    # ------------------------------------------------------------ machine -> outputs

    def _execute(self, action: turns.Action) -> None:
        match action:
            case turns.StartStreaming():
                self.turn_log.begin(self._edge, time.monotonic(), **self._counters())
                self.sender.start_turn(self._edge, self.cfg.audio.preroll_ms)
                self._arm_timer(self.cfg.button.max_turn_s, turns.Timeout("max_turn"))
            case turns.StopStreaming():
                if self.turn_log.record is not None:
                    self.turn_log.record.released_at = time.monotonic()
                self.sender.end_turn(server_vad=self.cfg.live.turn_detection == "server")
                self._arm_timer(REPLY_TIMEOUT_S, turns.Timeout("no_reply"))
            case turns.CancelStreaming():
                self.sender.cancel()
            case turns.StopPlayback():
                self.playback.stop_now()
            case turns.PlayAudio():
                self._play(action.data, action.rate)
            case turns.UnaskedReply():
                self.turn_log.begin(None, time.monotonic(), **self._counters())
            case turns.WatchQuiet():
                self._arm_timer(action.seconds, turns.Timeout("quiet"))
            case turns.EndReply():
                self.playback.end_reply()
            case turns.PlayEarcon():
                self.playback.play_earcon(action.name)
            case turns.SetLed():
                self.led.show(action.pattern)
            case turns.CancelTimer():
                self._cancel_timer()
            case turns.Log():
                log.log(logging.getLevelName(action.level.upper()), action.message)
            case turns.TurnEnded():
                self._end_record(action.outcome, action.interrupted)

    def _play(self, data: bytes, rate: int) -> None:
        now = time.monotonic()
        if (rec := self.turn_log.record) is not None and rec.reply_audio(len(data), rate, now) \
                and rec.released_at is not None:
            self.stats.release_to_first_audio.record(rec.released_at, now)
        self.playback.feed(data, now, rate)

    def _counters(self) -> dict[str, int]:
        """The device counters' totals now, which a turn record keeps the growth of."""
        return {"underruns": self.playback.underruns,
                "overruns": self.capture.overruns + self.ring.overruns}

    def _arm_timer(self, seconds: float, event: turns.Event) -> None:
        self._cancel_timer()
        if self._loop is not None:
            self._timer = self._loop.call_later(seconds, self._feed, event)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _end_record(self, outcome: str, interrupted: bool) -> None:
        self._cancel_timer()
        rec = self.turn_log.end(outcome, interrupted, samples_sent=self.sender.samples_sent,
                                **self._counters())
        if rec is None:
            return
        log.log(logging.WARNING if rec.kind == "failed" else logging.INFO, rec.summary(),
                extra=rec.fields())
        if self.on_turn is not None:
            self.on_turn(rec)


def main(args: argparse.Namespace) -> int:
    try:
        cfg = config.load(args.config)
        warnings = models.validate(cfg.live, cfg.path)
        key = resolve(cfg)
    except ConfigError as exc:
        journal.setup("info")
        log.error("%s", exc)
        print(f"pttd: {exc}", flush=True)
        return EX_CONFIG
    journal.setup(cfg.log.level, secrets=[key.reveal()])
    log.info("starting pttd (config %s, API key from %s)", cfg.path, key.source)
    for warning in warnings:
        log.warning("%s", warning)
    try:
        return asyncio.run(App(cfg, key, on_ready=heap.settle).run())
    except ConfigError as exc:
        log.error("%s", exc)
        return EX_CONFIG
