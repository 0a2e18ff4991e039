"""One WebSocket to the Live API: websockets' sans-I/O ClientProtocol on an asyncio transport.

This is how websockets builds its own asyncio connections, kept to what pttd needs: the opening
handshake with the API-key header, TEXT messages written synchronously (so a loop callback can
send without a task switch), complete messages handed to a callback, keepalive pings with a
timeout, and the closing handshake. The transport's write buffer is the only send queue; when
it passes HIGH_WATER the connection is treated as stalled and dropped, never awaited.

    conn = Connection(url, key, cfg, poke=wake_up)
    await loop.create_connection(lambda: conn, host, port, ssl=context)
    await conn.handshake
    conn.write(frame)
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from config import LiveConfig
from config.apikey import ApiKey
from daemon.live.failures import HandshakeFailed, UpgradeRefused

# websockets logs request headers (the API key among them) at debug level: never let it.
_WS_LOG = logging.getLogger("pttd.live.websocket")
_WS_LOG.setLevel(logging.INFO)

MAX_FRAME = 16 * 2**20     # the service's replies can exceed the websockets default of 1 MiB
CLOSE_TIMEOUT_S = 2.0
# Unsent bytes past which a connection counts as stalled: more speech than the capture ring
# holds, so a turn waiting on it is lost anyway, and a fresh connection is the way out.
HIGH_WATER = 1 * 2**20
USER_AGENT = "pttd"


class Connection(asyncio.Protocol):
    """One WebSocket: websockets' ClientProtocol on an asyncio transport, with keepalive.

    Complete messages go to `deliver`; until one is set they wait in `inbox`.
    """

    def __init__(self, url: str, key: ApiKey, cfg: LiveConfig, poke: Callable[[], None]) -> None:
        self.ws = ClientProtocol(parse_uri(url), max_size=MAX_FRAME, logger=_WS_LOG)
        self._key = key
        self._interval, self._timeout = cfg.keepalive_interval_s, cfg.keepalive_timeout_s
        self._poke = poke
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] = self._loop.create_future()
        self.gone: asyncio.Future[None] = self._loop.create_future()
        self.stalled = False
        self.inbox: list[bytes] = []
        self.arrived = asyncio.Event()   # a message reached the inbox, or the connection closed
        self.deliver: Callable[[bytes], None] | None = None
        self._parts: list[bytes] = []
        self._ping: bytes | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closer: asyncio.TimerHandle | None = None

    @property
    def writable(self) -> bool:
        return self.ws.state is State.OPEN and not self.stalled

    @property
    def close_code(self) -> int | None:
        """The server's close code once the connection is closed (1006: none received)."""
        return self.ws.close_code

    @property
    def close_reason(self) -> str:
        return self.ws.close_reason or ""

    def write(self, frame: bytes) -> bool:
        """One TEXT message, handed to the transport at once; False, with nothing written,
        once the connection is closing or stalled."""
        if not self.writable:
            return False
        self.ws.send_text(frame)
        self._flush()
        return True

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake; the transport is closed when the server answers, or
        after CLOSE_TIMEOUT_S. A handshake still under way is abandoned."""
        if not self.handshake.done():
            self.handshake.cancel()
        if self.ws.state is State.OPEN:
            self.ws.send_close(code)
            self._flush()
            self._expect_close()
        elif self.ws.state is State.CONNECTING and self.transport is not None:
            self.transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER)
        request = self.ws.connect()
        request.headers["x-goog-api-key"] = self._key.reveal()
        request.headers["User-Agent"] = USER_AGENT
        self.ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        events = self.ws.events_received()
        self._flush()
        self._expect_close()
        for event in events:
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Response):
                self._handshake_done()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.ws.receive_eof()   # idempotent: the state is CLOSED from here on
        for timer in (self._timer, self._closer):
            if timer is not None:
                timer.cancel()
        if not self.handshake.done():
            self.handshake.set_exception(self._handshake_error() or ConnectionError(
                "the connection closed during the WebSocket handshake"))
        if not self.gone.done():
            self.gone.set_result(None)
        self.arrived.set()
        self._poke()

    def pause_writing(self) -> None:
        self.stalled = True
        if self.transport is not None:
            self.transport.abort()

    # internals

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.ws.data_to_send():
            if transport.is_closing():
                continue    # aborted (stalled, or no pong): what is left goes nowhere
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()

    def _expect_close(self) -> None:
        if self.ws.close_expected() and self._closer is None and self.transport is not None:
            self._closer = self._loop.call_later(CLOSE_TIMEOUT_S, self.transport.abort)

    def _handshake_error(self) -> Exception | None:
        exc = self.ws.handshake_exc
        if isinstance(exc, InvalidStatus):
            return UpgradeRefused(exc.response.status_code)
        if isinstance(exc, InvalidHandshake):
            return HandshakeFailed(type(exc).__name__)
        return exc

    def _handshake_done(self) -> None:
        if self.handshake.done():
            return
        exc = self._handshake_error()
        if exc is not None:
            self.handshake.set_exception(exc)
            return
        self.handshake.set_result(None)
        if self._interval:
            self._timer = self._loop.call_later(self._interval, self._send_ping)

    def _frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.PONG:
            if frame.data == self._ping:
                self._ping = None
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = self._loop.call_later(self._interval, self._send_ping)
            return
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._parts = [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT:
            self._parts.append(bytes(frame.data))
        else:
            return
        if frame.fin:
            message = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._parts = []
            if self.deliver is not None:
                self.deliver(message)
            else:
                self.inbox.append(message)
                self.arrived.set()

    def _send_ping(self) -> None:
        if not self.writable:
            return
        self._ping = os.urandom(4)
        self.ws.send_ping(self._ping)
        self._flush()
        self._timer = self._loop.call_later(self._timeout, self._ping_timed_out)

    def _ping_timed_out(self) -> None:
        self.ws.fail(1011, "keepalive ping timeout")
        self._flush()
        if self.transport is not None:
            self.transport.abort()


async def connect(url: str, key: ApiKey, cfg: LiveConfig, poke: Callable[[], None]) -> Connection:
    """A Connection past its opening handshake, within [live] setup_timeout_s; TLS verifies
    the server's certificate and name (SNI) with the system's default context."""
    uri = parse_uri(url)
    conn = Connection(url, key, cfg, poke)
    try:
        async with asyncio.timeout(cfg.setup_timeout_s):
            await asyncio.get_running_loop().create_connection(
                lambda: conn, uri.host, uri.port,
                ssl=ssl.create_default_context() if uri.secure else None)
            await conn.handshake
    except BaseException:
        conn.close()
        raise
    return conn
