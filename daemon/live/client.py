"""The Live API session over one WebSocket: the thin I/O shell around session.py.

It connects, reads, and writes, and nothing more: every decision (when a session is ready,
what a frame means for the turn, when to replace a connection, how long to wait after a failure)
is `Session`'s. Frames go out synchronously through one write path, so a loop callback that
announces a press or a captured period sends it without a task switch:

    client = LiveClient(cfg.live, key, on_event=handle)
    asyncio.create_task(client.run())
    ...
    if not client.activity_start():     # False, with nothing sent: no session is ready
        report("no Live session")

The WebSocket protocol is websockets' own sans-I/O `ClientProtocol`, driven by a small asyncio
Protocol the way websockets builds its own connections; the transport's write buffer is the
only queue, and a connection whose buffer passes a high-water mark is treated as stalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from config import LiveConfig, check_endpoint
from config.apikey import ApiKey
from daemon.live import protocol
from daemon.live.connection import CLOSE_TIMEOUT_S, Connection, connect
from daemon.live.failures import ClosedEarly, Retry, SetupTimeout, human
from daemon.live.protocol import Event, GoAway, ProtocolError, SetupComplete
from daemon.live.session import Session, Step

log = logging.getLogger("pttd.live")


class LiveClient:
    """One logical Live session that survives reconnects, for the app to send turns on.

    Sends return False, with nothing sent, when no session is ready, so a caller never waits on
    the network; events arrive through `on_event`, the session state through `on_state`. See the
    module docstring for an example.
    """

    # [live] keys a reload cannot apply: the key is resolved once, at start.
    RESTART_KEYS = frozenset({"api_key_file"})

    def __init__(self, cfg: LiveConfig, key: ApiKey, *, on_event: Callable[[Event], None],
                 on_state: Callable[[str], None] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rand: Callable[[], float] = random.random,
                 tools: Sequence[Mapping[str, Any]] = ()) -> None:
        check_endpoint(cfg.endpoint)
        self._key = key
        self._on_event = on_event
        self._on_state = on_state
        self._sleep = sleep
        self._session = Session(cfg, key_source=key.source, rand=rand, tools=tools)
        self.state = "offline"
        self.connections = 0
        self._current: Connection | None = None
        self._standby: Connection | None = None
        self._opener: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._poked = asyncio.Event()

    @property
    def cfg(self) -> LiveConfig:
        return self._session.cfg

    @property
    def url(self) -> str:
        return self._session.url

    @property
    def handle(self) -> str | None:
        return self._session.handle

    @property
    def problem(self) -> str:
        """What a user should fix for the session to work ("" when nothing)."""
        return self._session.problem

    # ------------------------------------------------------------ the one send path

    def activity_start(self) -> bool:
        """Send activityStart; False, with nothing sent, when no session is ready."""
        return self._send(self._session.activity_start)

    def send_audio(self, pcm: bytes | bytearray | memoryview) -> bool:
        """16 kHz PCM16LE mic audio, as activity_start (hot path: one base64 pass, one write)."""
        conn = self._current
        if conn is None or not conn.writable:
            return False
        frame = self._session.audio(pcm)
        if frame is None:
            return False
        conn.write(frame)
        return True

    def activity_end(self) -> bool:
        return self._send(self._session.activity_end, poke=True)

    def audio_stream_end(self) -> bool:
        return self._send(self._session.audio_stream_end, poke=True)

    def send_tool_response(self, responses: Iterable[protocol.FunctionResponse]) -> bool:
        return self._send(lambda: self._session.tool_response(responses))

    def send_client_content(self, turns: Iterable[tuple[str, str]], *,
                            turn_complete: bool) -> bool:
        return self._send(lambda: self._session.client_content(turns,
                                                               turn_complete=turn_complete))

    def _send(self, build: Callable[[], bytes | None], *, poke: bool = False) -> bool:
        """Build the frame (the session's turn state moves with it) only when the connection
        can take it, and write it at once."""
        conn = self._current
        if conn is None or not conn.writable:
            return False
        frame = build()
        if frame is None:
            return False
        conn.write(frame)
        if poke:
            self._poked.set()
        return True

    # ------------------------------------------------------------ running

    def update_config(self, cfg: LiveConfig) -> None:
        """Apply a reloaded [live] section (see Session.reconfigure)."""
        check_endpoint(cfg.endpoint)
        old_url = self.url
        change = self._session.reconfigure(cfg, time.monotonic())
        if self.url != old_url:
            self._log_version()
        if change:
            log.info("%s", change)
            if self._current is not None:
                self._act(self._session.poll(time.monotonic()))
            self._poked.set()

    async def run(self) -> None:
        """Keep a ready session until close(); returns only then."""
        self._log_version()
        try:
            while not self._closing:
                conn = await self._establish()
                if conn is None:
                    break
                retry = await self._serve()
                if retry is None:
                    break
                await self._wait_retry(retry)
        finally:
            self._drop_all()
            self._session.closed()
            self._set_state()

    async def close(self) -> None:
        """End the session cleanly (close code 1000) and make run() return."""
        self._closing = True
        self._closed.set()
        self._poked.set()
        conns = self._drop_all()
        if conns:
            await asyncio.wait([c.gone for c in conns], timeout=CLOSE_TIMEOUT_S + 0.5)

    def _log_version(self) -> None:
        log.info("Live API %s: %s", self.url, self._session.version_why,
                 extra={"PTTD_API_VERSION": self._session.version})

    def _set_state(self) -> None:
        state = self._session.state.value
        if state != self.state:
            self.state = state
            if self._on_state:
                self._on_state(state)

    async def _establish(self) -> Connection | None:
        """Open a ready session, retrying with backoff; None once close() was called."""
        while not self._closing:
            handle = self._session.connecting()
            self._set_state()
            try:
                conn = await self._open(handle)
            except Exception as exc:
                retry = self._session.open_failed(exc)
            else:
                if self._closing:
                    conn.close()
                    return None
                frames = self._session.opened(time.monotonic(), resumed=handle is not None)
                self._start(conn, frames)
                log.info("Live session ready (%s)", "resumed" if handle else "new",
                         extra={"PTTD_STATE": "ready"})
                self._set_state()
                return conn
            await self._wait_retry(retry)
        return None

    async def _open(self, handle: str | None) -> Connection:
        """Connect, send setup and wait for setupComplete."""
        conn = await connect(self.url, self._key, self.cfg, self._poked.set)
        self.connections += 1
        try:
            conn.write(self._session.setup_frame(handle))
            try:
                async with asyncio.timeout(self.cfg.setup_timeout_s):
                    await self._setup_complete(conn)
            except TimeoutError:
                raise SetupTimeout from None
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    async def _setup_complete(conn: Connection) -> None:
        """Wait for setupComplete; what came before it is dropped, what came after kept."""
        while True:
            conn.arrived.clear()
            while conn.inbox:
                raw = conn.inbox.pop(0)
                try:
                    events = protocol.parse_server_frame(raw)
                except ProtocolError as exc:
                    log.warning("ignored a malformed Live API frame during setup: %s", exc)
                    continue
                if any(isinstance(e, SetupComplete) for e in events):
                    return
            if conn.gone.done():
                raise ClosedEarly(conn.close_code or 1006, conn.close_reason)
            await conn.arrived.wait()

    def _start(self, conn: Connection, frames: list[bytes]) -> None:
        """Make `conn` the current connection: its frames flow to on_event from now on."""
        self._current = conn
        for frame in frames:
            conn.write(frame)
        conn.deliver = self._received
        inbox, conn.inbox = conn.inbox, []
        for raw in inbox:
            self._received(raw)

    async def _wait_retry(self, retry: Retry) -> None:
        log.log(retry.level, retry.line, extra={"PTTD_FAILURE": retry.failure.kind,
                                                "PTTD_RETRY_S": round(retry.delay, 3)})
        if retry.delay <= 0:
            return
        self._session.retrying()
        self._set_state()
        sleeper = asyncio.ensure_future(self._sleep(retry.delay))
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait((sleeper, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            closed.cancel()

    # ------------------------------------------------------------ a live session

    def _received(self, raw: bytes) -> None:
        try:
            events = protocol.parse_server_frame(raw)
        except ProtocolError as exc:
            log.warning("ignored a malformed Live API frame: %s", exc,
                        extra={"PTTD_BYTES": len(raw)})
            return
        now = time.monotonic()
        attend = False
        for event in events:
            attend = self._session.on_event(event, now) or attend
            if isinstance(event, GoAway):
                left = event.time_left_s
                log.info("the server will close the session in %s (goAway); preparing a "
                         "replacement", "a moment" if left is None else human(left),
                         extra={"PTTD_TIME_LEFT_S": left})
            try:
                self._on_event(event)
            except Exception as exc:
                log.error("handling Live API event %s failed: %s: %s", type(event).__name__,
                          type(exc).__name__, exc)
        if attend:
            self._poked.set()

    async def _serve(self) -> Retry | None:
        """Serve the current connection and its replacements; why the session ended (None:
        close() was called)."""
        session = self._session
        while True:
            current = self._current
            if self._closing or current is None:
                return None
            if current.gone.done():
                break
            self._poked.clear()
            self._act(session.poll(time.monotonic()))
            wake = session.wake_at(time.monotonic())
            timeout = None if wake is None else max(0.0, wake - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._poked.wait()
        self._current = None
        self._drop_standby()
        retry = session.lost(time.monotonic(), current.close_code, current.close_reason,
                             stalled=current.stalled)
        self._set_state()
        return retry

    def _act(self, step: Step) -> None:
        session = self._session
        while step is not Step.NOTHING:
            if step is Step.SEND_CONTEXT:
                frame = session.take_context()
                if frame is not None and self._current is not None:
                    self._current.write(frame)
            elif step is Step.OPEN_STANDBY:
                self._opener = asyncio.get_running_loop().create_task(
                    self._open_standby(session.standby_handle()))
                return
            elif step is Step.DISCARD_STANDBY:
                self._drop_standby()
            elif step is Step.SWITCH:
                old, new = self._current, self._standby
                self._standby = None
                if new is None:
                    return
                self._start(new, session.switched(time.monotonic()))
                log.info("switched to the new session between turns",
                         extra={"PTTD_STATE": "ready"})
                if old is not None:
                    old.deliver = None
                    old.close()
            step = session.poll(time.monotonic())

    async def _open_standby(self, handle: str | None) -> None:
        try:
            conn = await self._open(handle)
        except Exception as exc:
            log.warning("%s", self._session.standby_failed(exc))
        else:
            if self._closing or self._current is None:
                conn.close()
                return
            self._standby = conn
            self._session.standby_opened()
        self._poked.set()

    def _drop_standby(self) -> None:
        task, self._opener = self._opener, None
        if task is not None and not task.done():
            task.cancel()
        conn, self._standby = self._standby, None
        if conn is not None:
            conn.close()

    def _drop_all(self) -> list[Connection]:
        conns = [c for c in (self._current, self._standby) if c is not None]
        self._drop_standby()
        self._current = None
        for conn in conns:
            conn.close()
        return conns
