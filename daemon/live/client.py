"""The Live API session over one WebSocket: the thin I/O shell around protocol.py.

A session is opened and set up at start and kept warm while idle, so a press streams at once.
Lost sessions are resumed with the latest resumption handle after an exponential, jittered
backoff whose floor depends on why the session was lost (a rejected key is not retried every
second). On goAway a replacement session is opened before the old one runs out and taken over
between turns, never in the middle of the user's speech if it can be helped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State

from config import ConfigError, LiveConfig, is_loopback_url
from config.apikey import ApiKey
from daemon.live import protocol
from daemon.live.protocol import (
    AudioChunk,
    Event,
    GoAway,
    OutputTranscription,
    ProtocolError,
    SessionResumptionUpdate,
    SetupComplete,
    TextPart,
    TurnComplete,
)

log = logging.getLogger("pttd.live")
# websockets logs request headers (the API key among them) at debug level: never let it.
_WS_LOG = logging.getLogger("pttd.live.websocket")
_WS_LOG.setLevel(logging.INFO)

RENEW_WITHIN_S = 300.0     # a reloaded setup is applied at the next pause, at the latest by then
MAX_FRAME = 16 * 2**20     # the service's replies can exceed the websockets default of 1 MiB
STABLE_S = 30.0            # a session that lived this long resets the backoff
CLOSE_TIMEOUT_S = 2.0

# (floor, ceiling) in seconds of the retry delay after each kind of failure; "transient" uses
# [live] reconnect_min_s/reconnect_max_s. A bad key or a bad setup will not fix itself quickly.
RETRY_S = {"quota": (10.0, 300.0), "config": (60.0, 900.0), "auth": (120.0, 1800.0)}


class SessionUnavailable(Exception):
    """No Live session is ready: the turn cannot be sent now."""


class SetupTimeout(Exception):
    """The server did not answer the setup message in time."""


@dataclass(frozen=True)
class Failure:
    """Why a session was lost or could not be opened, as one log-ready phrase."""

    kind: str      # "transient" | "quota" | "config" | "auth" | "rejected" (mid-session 1007/1008)
    detail: str


def classify_close(code: int | None, reason: str) -> Failure:
    detail = f"close {code}" + (f": {reason}" if reason else "")
    low = reason.lower()
    if "api key" in low or "unregistered callers" in low or "permission" in low:
        return Failure("auth", detail)
    if code in (1007, 1008):
        return Failure("config", detail)
    if code == 1011 and "resource_exhausted" in low:
        return Failure("quota", detail)
    return Failure("transient", detail)


def classify_error(exc: BaseException) -> Failure:
    """A failure to connect or set up, classified without ever formatting request headers."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        detail = f"HTTP {status} at the WebSocket upgrade"
        if status in (401, 403):
            return Failure("auth", detail)
        if status in (400, 404):
            return Failure("config", detail)
        if status == 429:
            return Failure("quota", detail)
        return Failure("transient", detail)
    if isinstance(exc, ConnectionClosed):
        rcvd = exc.rcvd
        return classify_close(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "")
    if isinstance(exc, SetupTimeout):
        return Failure("transient", "no setupComplete in time")
    if isinstance(exc, TimeoutError):
        return Failure("transient", "connect timed out")
    if isinstance(exc, OSError):
        return Failure("transient", f"network: {exc.strerror or type(exc).__name__}")
    if isinstance(exc, InvalidHandshake):
        return Failure("transient", f"handshake failed ({type(exc).__name__})")
    return Failure("transient", type(exc).__name__)


class Backoff:
    """Exponential delays between `lo` and `hi`, each scaled by a jitter factor in [0.5, 1)."""

    def __init__(self, lo: float, hi: float, rand: Callable[[], float] = random.random) -> None:
        self.lo, self.hi, self._rand = lo, hi, rand
        self.attempt = 0

    def next(self) -> float:
        base = min(self.hi, self.lo * 2.0 ** min(self.attempt, 32))
        self.attempt += 1
        return base * (0.5 + 0.5 * self._rand())

    def reset(self) -> None:
        self.attempt = 0


def _human(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


@dataclass(eq=False)
class _Conn:
    """One open WebSocket and what the session knows of it."""

    ws: ClientConnection
    number: int
    resumed: bool
    ready_at: float


def _check_endpoint(cfg: LiveConfig) -> None:
    scheme = cfg.endpoint.split("://", 1)[0].lower()
    if scheme not in ("ws", "wss") or (scheme == "ws" and not is_loopback_url(cfg.endpoint)):
        raise ConfigError(f'[live] endpoint = "{cfg.endpoint}": must be wss:// '
                          "(ws:// only to a loopback host)")


class LiveClient:
    """One logical Live session that survives reconnects; see the module docstring."""

    # [live] keys a reload cannot apply: the key is resolved once, at start.
    RESTART_KEYS = frozenset({"api_key_file"})

    def __init__(self, cfg: LiveConfig, key: ApiKey, *, on_event: Callable[[Event], None],
                 on_state: Callable[[str], None] | None = None,
                 connect: Callable[..., Any] = connect,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rand: Callable[[], float] = random.random,
                 tools: Sequence[Mapping[str, Any]] = ()) -> None:
        _check_endpoint(cfg)
        self._key = key
        self._tools = tools  # function declarations for every setup (daemon/actions)
        self._on_event = on_event
        self._on_state = on_state
        self._connect = connect
        self._sleep = sleep
        self._rand = rand
        self._configure(cfg)
        self._setup_generation = 0
        self.state = "offline"
        self.handle: str | None = None
        self.connections = 0
        self._current: _Conn | None = None
        self._standby: _Conn | None = None
        self._switcher: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._poked = asyncio.Event()
        self._last_problem: Failure | None = None
        # Turn tracking, so a replacement session is taken over only between turns and only
        # with a handle that already contains the last turn.
        self._in_activity = False
        self._awaiting_reply = False
        self._turns = 0
        self._handle_fresh = False
        self._go_away_at = 0.0

    def _configure(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        self.version, self._version_why = protocol.choose_api_version(cfg)
        self.url = cfg.endpoint.rstrip("/") + protocol.ws_path(self.version)
        self._backoffs = {kind: Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s, self._rand)
                          for kind in ("transient", "rejected")}
        for kind, (lo, hi) in RETRY_S.items():
            self._backoffs[kind] = Backoff(max(lo, cfg.reconnect_min_s),
                                           max(hi, cfg.reconnect_max_s), self._rand)

    # ------------------------------------------------------------ public interface

    def update_config(self, cfg: LiveConfig) -> None:
        """Apply a reloaded [live] section. A changed setup or endpoint renews the session
        (resumed, so the conversation is kept) at the next pause between turns."""
        _check_endpoint(cfg)
        old_setup, old_url = protocol.setup(self.cfg), self.url
        self._configure(cfg)
        if protocol.setup(cfg) == old_setup and self.url == old_url:
            return
        self._setup_generation += 1
        log.info("Live API %s: %s", self.url, self._version_why,
                 extra={"PTTD_API_VERSION": self.version})
        if self._current is not None:
            log.info("session settings changed: the session will be renewed between turns")
            self._start_switch(self._current, time.monotonic() + RENEW_WITHIN_S)

    async def run(self) -> None:
        """Keep a ready session until close(); returns only then."""
        log.info("Live API %s: %s", self.url, self._version_why,
                 extra={"PTTD_API_VERSION": self.version})
        try:
            while not self._closing:
                conn = await self._establish()
                if conn is None or self._closing:
                    if conn is not None:
                        await self._discard(conn.ws)
                    break
                failure, lived = await self._session(conn)
                if failure is None:
                    break
                if lived >= STABLE_S:
                    for backoff in self._backoffs.values():
                        backoff.reset()
                self._set_state("offline")
                await self._wait_retry(failure)
        finally:
            await self._drop_all()
            self._set_state("offline")

    async def close(self) -> None:
        """End the session cleanly (close code 1000) and make run() return."""
        self._closing = True
        self._closed.set()
        await self._drop_all()

    async def activity_start(self) -> None:
        await self._send(protocol.activity_start())
        self._activity_started()

    def activity_start_now(self) -> bool:
        """activity_start without waiting, as send_audio_now."""
        if not self._write_now(protocol.activity_start()):
            return False
        self._activity_started()
        return True

    def _activity_started(self) -> None:
        self._turn_started()
        self._in_activity = True

    async def activity_end(self) -> None:
        await self._end_speech(protocol.activity_end())

    async def send_audio(self, pcm: bytes | bytearray | memoryview) -> None:
        """16 kHz PCM16LE mic audio (hot path: one base64 pass, one send)."""
        await self._send(protocol.audio(pcm))
        self._audio_sent()

    def send_audio_now(self, pcm: bytes | bytearray | memoryview) -> bool:
        """send_audio from a loop callback, without a task switch; False, with nothing sent,
        when the frame cannot go out at once (the caller then awaits send_audio)."""
        if not self._write_now(protocol.audio(pcm)):
            return False
        self._audio_sent()
        return True

    def _audio_sent(self) -> None:
        if not self._in_activity and self.cfg.turn_detection == "server":
            self._turn_started()
            self._in_activity = True

    async def audio_stream_end(self) -> None:
        await self._end_speech(protocol.audio_stream_end())

    def end_speech_now(self, *, server_vad: bool) -> bool:
        """activity_end (audio_stream_end with server VAD) without waiting, as send_audio_now."""
        if not self._write_now(protocol.audio_stream_end() if server_vad
                               else protocol.activity_end()):
            return False
        self._speech_ended()
        return True

    async def _end_speech(self, message: str) -> None:
        self._speech_ended()
        await self._send(message)

    def _speech_ended(self) -> None:
        """The user stopped talking (button or server VAD): from now on a reply is owed."""
        self._in_activity = False
        self._awaiting_reply = True
        self._poke()

    async def send_text(self, text: str) -> None:
        await self._send(protocol.text(text))
        self._turn_started()
        self._awaiting_reply = True

    async def send_tool_response(self, responses: list[protocol.FunctionResponse]) -> None:
        await self._send(protocol.tool_response(responses))

    # ------------------------------------------------------------ sending

    async def _send(self, frame: str) -> None:
        conn = self._current
        if conn is None or self.state != "ready":
            raise SessionUnavailable(f"no Live session ready (state {self.state})")
        try:
            await conn.ws.send(frame)
        except ConnectionClosed:
            raise SessionUnavailable("the Live session was lost") from None

    def _write_now(self, frame: str) -> bool:
        """Hand `frame` to the socket at once when nothing could make a send wait: the session
        is ready and open and the write buffer is under its limit. pttd never fragments a
        message, so no other send can be between the frames of one."""
        conn = self._current
        if conn is None or self.state != "ready":
            return False
        ws = conn.ws
        if ws.protocol.state is not State.OPEN or ws.paused or ws.transport.is_closing():
            return False
        ws.protocol.send_text(frame.encode())
        ws.send_data()
        return True

    def _turn_started(self) -> None:
        self._turns += 1
        self._handle_fresh = False
        self._awaiting_reply = False
        self._poke()

    @property
    def _quiet(self) -> bool:
        return not self._in_activity and not self._awaiting_reply

    def _poke(self) -> None:
        self._poked.set()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self._on_state:
                self._on_state(state)

    # ------------------------------------------------------------ connecting

    async def _establish(self) -> _Conn | None:
        """Open a ready session, retrying with backoff; None once close() was called."""
        while not self._closing:
            self._set_state("connecting")
            try:
                return await self._open(self.handle)
            except Exception as exc:
                failure = classify_error(exc)
            if self.handle and failure.kind == "config":
                log.warning("could not resume the conversation (%s); starting a fresh one",
                            failure.detail)
                self.handle = None
                continue
            self._set_state("offline")
            await self._wait_retry(failure)
        return None

    async def _open(self, handle: str | None) -> _Conn:
        """Connect, send setup and wait for setupComplete; the context goes to fresh sessions."""
        ws = await self._connect(
            self.url, additional_headers={"x-goog-api-key": self._key.reveal()},
            max_size=MAX_FRAME, compression=None, open_timeout=self.cfg.setup_timeout_s,
            ping_interval=self.cfg.keepalive_interval_s,
            ping_timeout=self.cfg.keepalive_timeout_s, close_timeout=CLOSE_TIMEOUT_S,
            logger=_WS_LOG)
        self.connections += 1
        try:
            await ws.send(protocol.setup(self.cfg, handle, self._tools))
            try:
                async with asyncio.timeout(self.cfg.setup_timeout_s):
                    while not await self._setup_complete(ws):
                        pass
            except TimeoutError:
                raise SetupTimeout from None
            if handle is None and (context := protocol.initial_context(self.cfg)):
                await ws.send(context)
        except BaseException:
            await self._discard(ws)
            raise
        conn = _Conn(ws, self.connections, handle is not None, time.monotonic())
        if handle is None:
            self._handle_fresh = False
        return conn

    @staticmethod
    async def _setup_complete(ws: ClientConnection) -> bool:
        raw = await ws.recv()
        try:
            events = protocol.parse_server_frame(raw)
        except ProtocolError as exc:
            log.warning("ignored a malformed Live API frame during setup: %s", exc)
            return False
        return any(isinstance(e, SetupComplete) for e in events)

    async def _wait_retry(self, failure: Failure) -> None:
        delay = self._backoffs[failure.kind].next()
        retry = f"retrying in {_human(delay)}"
        level, line = logging.WARNING, f"Live session lost ({failure.detail}); {retry}"
        if failure.kind == "auth":
            level = logging.ERROR
            line = (f"the Live API rejected the API key from {self._key.source} "
                    f"({failure.detail}); check the key; {retry}")
        elif failure.kind == "config":
            level = logging.ERROR
            line = (f"the Live API refused the session setup ({failure.detail}): check "
                    f'[live] model = "{self.cfg.model}" and api_version ({self.version}) '
                    f"and the other [live] settings; {retry}")
        elif failure.kind == "rejected":
            level = logging.ERROR
            line = f"the Live API ended the session over a request ({failure.detail}); {retry}"
        elif failure.kind == "quota":
            line = f"the Live API is over quota or busy ({failure.detail}); {retry}"
        if failure == self._last_problem:
            level = logging.DEBUG
        self._last_problem = failure
        log.log(level, line, extra={"PTTD_FAILURE": failure.kind,
                                    "PTTD_RETRY_S": round(delay, 3)})
        sleeper = asyncio.ensure_future(self._sleep(delay))
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait((sleeper, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            closed.cancel()

    # ------------------------------------------------------------ a live session

    async def _session(self, conn: _Conn) -> tuple[Failure | None, float]:
        """Serve `conn` and its goAway replacements; returns why the session ended."""
        self._current = conn
        if self._last_problem is not None or conn.number == 1:
            log.info("Live session ready (%s)", "resumed" if conn.resumed else "new",
                     extra={"PTTD_STATE": "ready"})
        self._last_problem = None
        while True:
            self._set_state("ready")
            await self._read(conn)
            if self._closing:
                return None, 0.0
            if self._current is not conn and self._current is not None:
                conn = self._current
                continue
            break
        self._current = None
        self._in_activity = self._awaiting_reply = False   # that turn is lost with the session
        self._set_state("connecting")
        await self._cancel_switch()
        ws = conn.ws
        failure = classify_close(ws.close_code, ws.close_reason or "")
        if failure.kind == "config":
            # The setup was accepted, so this is about one request (e.g. the intermittent 1008
            # on tool calls), not the configuration: say so, and resume quickly.
            failure = Failure("rejected", failure.detail)
        return failure, time.monotonic() - conn.ready_at

    async def _read(self, conn: _Conn) -> None:
        try:
            async for raw in conn.ws:
                try:
                    events = protocol.parse_server_frame(raw)
                except ProtocolError as exc:
                    log.warning("ignored a malformed Live API frame: %s", exc,
                                extra={"PTTD_BYTES": len(raw)})
                    continue
                for event in events:
                    self._dispatch(conn, event)
        except ConnectionClosed:
            pass

    def _dispatch(self, conn: _Conn, event: Event) -> None:
        if isinstance(event, (AudioChunk, TextPart, OutputTranscription)):
            if not self._in_activity:
                self._awaiting_reply = True
        elif isinstance(event, TurnComplete):
            self._awaiting_reply = False
        elif isinstance(event, SessionResumptionUpdate):
            if event.resumable and event.handle:
                self.handle = event.handle
                self._handle_fresh = self._quiet
            else:
                self._handle_fresh = False
        elif isinstance(event, GoAway):
            self._go_away(conn, event)
        self._poke()
        try:
            self._on_event(event)
        except Exception as exc:
            log.error("handling Live API event %s failed: %s: %s", type(event).__name__,
                      type(exc).__name__, exc)

    # ------------------------------------------------------------ goAway switch-over

    def _go_away(self, conn: _Conn, event: GoAway) -> None:
        left = event.time_left_s if event.time_left_s is not None else 30.0
        log.info("the server will close the session in %s (goAway); preparing a replacement",
                 _human(left), extra={"PTTD_TIME_LEFT_S": left})
        self._start_switch(conn, time.monotonic() + left)

    def _start_switch(self, conn: _Conn, deadline: float) -> None:
        """Replace `conn` before `deadline` (the nearest one wins if already replacing)."""
        running = self._switcher is not None and not self._switcher.done()
        self._go_away_at = min(self._go_away_at, deadline) if running else deadline
        if not running:
            self._switcher = asyncio.get_running_loop().create_task(self._switch(conn))
        self._poke()

    async def _wait_poke(self, until: float) -> None:
        self._poked.clear()
        left = until - time.monotonic()
        if left > 0:
            try:
                async with asyncio.timeout(left):
                    await self._poked.wait()
            except TimeoutError:
                pass

    async def _switch(self, old: _Conn) -> None:
        """Open a replacement with a handle that holds the last turn, and take it over when
        the user is not speaking and no reply is under way."""
        while self._current is old and not self._closing:
            margin = min(self.cfg.setup_timeout_s, max(0.0, self._go_away_at - time.monotonic())
                         / 2)
            latest = self._go_away_at - margin
            if not (self._quiet and self._handle_fresh) and time.monotonic() < latest:
                await self._wait_poke(latest)
                continue
            turns, handle, generation = self._turns, self.handle, self._setup_generation
            try:
                new = await self._open(handle)
            except Exception as exc:
                log.warning("could not open the replacement session (%s); keeping the current "
                            "one until the server closes it", classify_error(exc).detail)
                return
            self._standby = new
            while self._current is old and not self._quiet and not self._closing:
                await self._wait_poke(self._go_away_at)
            self._standby = None
            if (self._current is not old or self._closing or self._turns != turns
                    or self.handle != handle or self._setup_generation != generation):
                # A turn, a newer handle or new settings arrived meanwhile.
                await self._discard(new.ws)
                continue
            self._current = new
            log.info("switched to the new session between turns",
                     extra={"PTTD_STATE": "ready"})
            await old.ws.close(1000)
            return

    async def _cancel_switch(self) -> None:
        task, self._switcher = self._switcher, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._standby is not None:
            await self._discard(self._standby.ws)
            self._standby = None

    async def _drop_all(self) -> None:
        await self._cancel_switch()
        conn, self._current = self._current, None
        if conn is not None:
            await conn.ws.close(1000)

    @staticmethod
    async def _discard(ws: ClientConnection) -> None:
        try:
            await ws.close(1000)
        except Exception as exc:
            log.debug("closing a WebSocket failed: %s", type(exc).__name__)
