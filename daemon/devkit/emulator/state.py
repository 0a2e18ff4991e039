"""What every part of the emulator shares: its options, one connection's Session, a refusal,
and the send path every reply and fault goes out through."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed

from daemon.devkit.tool_script import ScriptedTurn, ToolPlayer
from daemon.live.models import UNKNOWN, ModelRules

log = logging.getLogger("pttd.emulator")

MAX_REASON = 123  # bytes: a close frame's payload is at most 125, two of them are the code
INVALID_ARGUMENT = "Request contains an invalid argument."
CHUNK_MS = 40


@dataclass(frozen=True)
class EmulatorOptions:
    host: str = "127.0.0.1"
    port: int = 0
    mode: str = "echo"                     # echo | text (text: text replies in every session)
    pace: str = "realtime"                 # realtime | burst
    text_frames: bool = False              # the real service sends binary frames
    drip_ms: float = 0.0                   # extra delay between reply chunks
    jitter_ms: float = 0.0                 # realtime: each reply chunk this much early/late, random
    go_away_after: float | None = None     # seconds after setup
    go_away_time_left: float = 5.0
    close_after: float | None = None
    close_code: int = 1011
    close_reason: str = "Internal error occurred."
    reject_status: int | None = None       # every upgrade answered with this HTTP status
    stall_after: float | None = None
    stall_s: float = 3600.0
    malformed_every: int = 0
    unknown_every: int = 0
    api_key: str | None = None             # None: any non-empty key
    known_models: tuple[str, ...] = ()     # non-empty: other models are refused with 1008
    record: str | None = None              # append every client frame here as a JSON line
    reply_max_ms: int = 0                  # > 0: echoed replies are cut to this long
    tool_turns: tuple[ScriptedTurn, ...] = ()  # user turns answered with toolCalls (tool_script)
    # How a barge-in ends the reply it cuts: "model" as the model's rules say (interrupted,
    # then turnComplete; turnComplete alone where the model sends no interrupted),
    # "interrupted" (both, whatever the model), "silent" (neither, as some previews do).
    barge_in_end: str = "model"
    # Close with 1011 "Deadline expired" this long after setup; None: at the model's session
    # limit (58 min on gemini-3.8-live), if it has one.
    session_deadline_s: float | None = None
    # A user turn with less audio than this ends with waitingForInput (NEED_MORE_INPUT) on
    # models that send it, instead of a reply.
    need_more_input_below_ms: int = 100


def truncate_reason(reason: str) -> str:
    """Close reasons are cut to 123 bytes, as the service does (longer ones break the frame)."""
    return reason.encode("utf-8")[:MAX_REASON].decode("utf-8", "ignore")


@dataclass
class Session:
    """One WebSocket connection, as the emulator sees it; tests read these."""

    id: int
    version: str
    ws: ServerConnection
    setup: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    closed: bool = False
    modality: str = "AUDIO"
    rules: ModelRules = UNKNOWN            # the model's rules, from its setup
    refused: str = ""                      # the setup field the model rejected, if it did
    manual_activity: bool = False
    interrupts: bool = True
    resumable: bool = False
    resumed_from: str | None = None
    transcribe_in: bool = False
    transcribe_out: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    in_activity: bool = False
    reply: asyncio.Task[None] | None = None
    messages: int = 0
    stalled_until: float = 0.0
    close_code: int | None = None
    closed_by_server: bool = False


class Refused(Exception):
    """The service refuses what the client sent: the session closes with `code`, `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@contextlib.contextmanager
def invalid_argument() -> Iterator[None]:
    """A message of the wrong shape is refused the way the service refuses it: close 1007."""
    try:
        yield
    except (TypeError, ValueError, AttributeError, KeyError):
        raise Refused(1007, INVALID_ARGUMENT) from None


class Core:
    """The emulator's state and send path; Faults, Replies and the server build on it."""

    def __init__(self, opts: EmulatorOptions | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.opts = opts or EmulatorOptions()
        self.sessions: list[Session] = []
        self.frames: list[tuple[int, Any]] = []    # (session id, client frame)
        self.frame_times: list[float] = []         # time.monotonic() each frame arrived
        self.sent: list[tuple[int, bytes]] = []     # (session id, server frame as UTF-8 JSON)
        # (time.monotonic() handed to the socket, 24 kHz PCM) of the latest reply chunks
        self.audio_sent: deque[tuple[float, bytes]] = deque(maxlen=1024)
        self.handles: dict[str, tuple[dict[str, Any], ...]] = {}
        self.upgrades: list[int] = []               # HTTP status of each upgrade answered
        self.replies = 0
        self._on_change = on_change
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._reject: deque[int] = deque()
        self._slow_setup: deque[float] = deque()
        self._corrupt: deque[tuple[str, int]] = deque()
        self._close_mid_reply: tuple[int, str] | None = None
        self._drip_ms = self.opts.drip_ms
        self._tasks: set[asyncio.Task[None]] = set()
        self.tools = ToolPlayer(self.opts.tool_turns)

    def _live(self) -> list[Session]:
        return [s for s in self.sessions if s.ready and not s.closed]

    def _spawn(self, coro: Any) -> None:
        async def guarded() -> None:
            with contextlib.suppress(ConnectionClosed):
                await coro
        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _changed(self) -> None:
        if self._on_change:
            self._on_change()

    # ------------------------------------------------------------ sending

    async def _send(self, s: Session, msg: dict[str, Any]) -> None:
        await self._send_raw(s, json.dumps(msg, separators=(",", ":")).encode())

    async def _send_raw(self, s: Session, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.sent.append((s.id, raw))
        await s.ws.send(raw.decode() if self.opts.text_frames else raw)
        self._changed()

    async def _close(self, s: Session, code: int, reason: str) -> None:
        if s.closed or s.closed_by_server:
            return
        s.close_code = code
        s.closed_by_server = True
        self._changed()
        if code == 1006:
            if s.ws.transport is not None:
                s.ws.transport.abort()
            return
        await s.ws.close(code, truncate_reason(reason))

    @staticmethod
    async def _wait_unstalled(s: Session) -> None:
        left = s.stalled_until - time.monotonic()
        if left > 0:
            await asyncio.sleep(left)


def audio_frame(pcm: bytes, rate: int) -> bytes:
    return (b'{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm;rate='
            + str(rate).encode() + b'","data":"' + base64.b64encode(pcm) + b'"}}]}}}')


