"""A local Live API server that speaks the real wire protocol, for tests, the demo and bring-up.

It accepts what the official SDK and pttd send (camelCase or snake_case, either base64 alphabet,
the key as a header or in the query) and answers the way the service does: binary JSON frames,
setupComplete, replies that end with generationComplete and turnComplete plus usageMetadata,
sessionResumptionUpdate handles that really resume (history kept per handle), interrupted on
barge-in, goAway before a close. Echo mode answers each user turn with the user's own audio,
resampled to 24 kHz. Faults (closes, stalls, bad frames, HTTP errors at the upgrade) can be set
by options or injected at run time, which is what the client and fault-matrix tests build on.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import logging
import math
import random
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import soxr
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from daemon.live.protocol import (
    INPUT_RATE,
    OUTPUT_RATE,
    ProtocolError,
    b64decode,
    lookup,
    rate_from_mime,
)

log = logging.getLogger("pttd.emulator")
# websockets logs request headers (the client's API key among them) at debug level: never let it.
_WS_LOG = logging.getLogger("pttd.emulator.websocket")
_WS_LOG.setLevel(logging.INFO)

PATH_RE = re.compile(r"/ws/google\.ai\.generativelanguage\.(v1|v1beta|v1alpha)\."
                     r"GenerativeService\.(BidiGenerateContent|BidiGenerateContentConstrained)")
MAX_REASON = 123  # bytes: a close frame's payload is at most 125, two of them are the code
INVALID_ARGUMENT = "Request contains an invalid argument."
NO_KEY = ("Method doesn't allow unregistered callers (callers without established identity). "
          "Please use API Key or other form of API consumer identity to call this API.")
BAD_KEY = "API key not valid. Please pass a valid API key."
CHUNK_MS = 40
_BYTES_PER_MS_IN = INPUT_RATE * 2 // 1000


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


def truncate_reason(reason: str) -> str:
    """Close reasons are cut to 123 bytes, as the service does (longer ones break the frame)."""
    return reason.encode("utf-8")[:MAX_REASON].decode("utf-8", "ignore")


def _api_key(request: Request) -> str:
    query = parse_qs(urlsplit(request.path).query)
    for name in ("key", "access_token"):
        if query.get(name):
            return query[name][0]
    key = request.headers.get("x-goog-api-key", "")
    if key:
        return key
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme in ("Token", "Bearer") else ""


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


class _Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@contextlib.contextmanager
def _invalid_argument() -> Iterator[None]:
    """A message of the wrong shape is refused the way the service refuses it: close 1007."""
    try:
        yield
    except (TypeError, ValueError, AttributeError, KeyError):
        raise _Refused(1007, INVALID_ARGUMENT) from None


class Emulator:
    """The server. start()/stop() on a running loop; see EmulatorThread for use from tests."""

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

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}"

    async def start(self) -> None:
        self._server = await serve(self._handle, self.opts.host, self.opts.port,
                                   process_request=self._process_request, max_size=None,
                                   ping_interval=None, close_timeout=2, logger=_WS_LOG)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for s in self.sessions:
            if not s.closed and s.ws.transport is not None:
                s.ws.transport.abort()   # a stalled peer would hold up a polite close
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


    # ------------------------------------------------------------ fault injection (loop thread)

    def inject(self, kind: str, **kw: Any) -> None:
        """Apply a fault now (or to the next reply/upgrade); kinds are the fault_* methods."""
        method = getattr(self, "fault_" + kind, None)
        if method is None:
            kinds = sorted(n[6:] for n in dir(self) if n.startswith("fault_"))
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(kinds)}")
        log.info("fault injected: %s %s", kind, kw or "")
        method(**kw)

    def _live(self) -> list[Session]:
        return [s for s in self.sessions if s.ready and not s.closed]

    def fault_close(self, code: int = 1011, reason: str = "Internal error occurred.",
                    mid_reply: bool = False) -> None:
        """Close live sessions now with code/reason (1006: drop the TCP connection), or in the
        middle of the next reply."""
        if mid_reply:
            self._close_mid_reply = (code, reason)
            return
        for s in self._live():
            self._spawn(self._close(s, code, reason))

    def fault_go_away(self, time_left_s: float = 5.0, close: bool = True) -> None:
        """goAway now; then, unless close=False, a 1000 close when the time is up."""
        for s in self._live():
            self._spawn(self._go_away(s, time_left_s, close))

    def fault_stall(self, seconds: float) -> None:
        """Stop reading (so pings go unanswered) and sending for `seconds`."""
        for s in self._live():
            self._stall(s, seconds)

    def fault_raw(self, data: bytes | str) -> None:
        """Send these bytes as a frame to every live session, as they are."""
        for s in self._live():
            self._spawn(self._send_raw(s, data))

    def fault_malformed(self) -> None:
        self.fault_raw(b'{"serverContent": {"modelTurn": ')

    def fault_unknown_only(self) -> None:
        self.fault_raw(b'{"someFutureField": {}}')

    def fault_oversize(self, nbytes: int = 1_500_000) -> None:
        """A valid audio frame bigger than the websockets default max_size of 1 MiB."""
        self.fault_raw(_audio_frame(bytes(nbytes - nbytes % 2), OUTPUT_RATE))

    def fault_bad_base64(self) -> None:
        """The next reply audio chunk carries data that is not base64."""
        self._corrupt.append(("bad_base64", 0))

    def fault_odd_pcm(self) -> None:
        """The next reply audio chunk loses its last byte (odd-length PCM16)."""
        self._corrupt.append(("odd_pcm", 0))

    def fault_rate(self, rate: int = 16000) -> None:
        """The next reply audio chunk is labelled with another rate than 24 kHz."""
        self._corrupt.append(("rate", rate))

    def fault_reject(self, status: int = 429, count: int = 1) -> None:
        """Answer the next `count` upgrades with this HTTP status."""
        self._reject.extend([status] * count)

    def fault_slow_setup(self, seconds: float, count: int = 1) -> None:
        """Delay setupComplete of the next `count` sessions by `seconds`."""
        self._slow_setup.extend([seconds] * count)

    def fault_drip(self, ms: float) -> None:
        """Hold each reply chunk back by `ms` from now on (0 stops it)."""
        self._drip_ms = ms

    # ------------------------------------------------------------ connection handling

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

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        status: int | None = None
        body = ""
        if not PATH_RE.fullmatch(urlsplit(request.path).path):
            status, body = 404, "Not Found"
        elif self._reject:
            status = self._reject.popleft()
        elif self.opts.reject_status:
            status = self.opts.reject_status
        if status is None:
            self.upgrades.append(101)
            return None
        self.upgrades.append(status)
        self._changed()
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        text = body or phrase
        return Response(status, phrase,
                        Headers([("Content-Type", "text/plain"),
                                 ("Content-Length", str(len(text)))]), text.encode())

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        match = PATH_RE.fullmatch(urlsplit(ws.request.path).path)
        s = Session(next(self._ids), match.group(1) if match else "", ws)
        self.sessions.append(s)
        handler = asyncio.current_task()
        assert handler is not None
        self._tasks.add(handler)
        self._changed()
        timers: list[asyncio.Task[None]] = []
        try:
            key = _api_key(ws.request)
            if not key:
                raise _Refused(1008, NO_KEY)
            if self.opts.api_key is not None and key != self.opts.api_key:
                raise _Refused(1007, BAD_KEY)
            first = self._decode(s, await ws.recv())
            with _invalid_argument():
                self._setup(s, first)
            if self._slow_setup:
                await asyncio.sleep(self._slow_setup.popleft())
            await self._send(s, {"setupComplete": {}})
            s.ready = True
            self._changed()
            log.info("session %d: %s, %s replies%s", s.id, s.version, s.modality,
                     f", resumed from {s.resumed_from}" if s.resumed_from else "")
            if s.resumable:
                await self._resumption_update(s)
            timers = self._start_timers(s)
            async for raw in ws:
                msg = self._decode(s, raw)
                with _invalid_argument():
                    await self._message(s, msg)
        except _Refused as exc:
            log.info("session %d refused: %d %s", s.id, exc.code, exc.reason)
            await self._close(s, exc.code, exc.reason)
        except (ConnectionClosed, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(handler)
            for task in timers:
                task.cancel()
            if s.reply:
                s.reply.cancel()
            s.closed = True
            if s.close_code is None and ws.close_code is not None:
                s.close_code = ws.close_code
            self._changed()

    def _start_timers(self, s: Session) -> list[asyncio.Task[None]]:
        o = self.opts
        loop = asyncio.get_running_loop()
        out = []
        if o.go_away_after is not None:
            out.append(loop.create_task(self._after(o.go_away_after, self._go_away(
                s, o.go_away_time_left, True))))
        if o.close_after is not None:
            out.append(loop.create_task(self._after(o.close_after, self._close(
                s, o.close_code, o.close_reason))))
        if o.stall_after is not None:
            out.append(loop.create_task(self._after(o.stall_after, self._stall_async(
                s, o.stall_s))))
        return out

    @staticmethod
    async def _after(delay: float, coro: Any) -> None:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            coro.close()
            raise
        with contextlib.suppress(ConnectionClosed):
            await coro

    def _decode(self, s: Session, raw: str | bytes) -> dict[str, Any]:
        try:
            msg = json.loads(raw)
        except ValueError:
            self._keep(s, {"invalidFrame": str(raw[:200])})
            raise _Refused(1007, INVALID_ARGUMENT) from None
        self._keep(s, msg)
        if not isinstance(msg, dict):
            raise _Refused(1007, INVALID_ARGUMENT)
        return msg

    def _keep(self, s: Session, msg: Any) -> None:
        s.messages += 1
        self.frames.append((s.id, msg))
        self.frame_times.append(time.monotonic())
        if self.opts.record:
            # Opened per frame so a reader (or a crash) always sees every line complete.
            with open(self.opts.record, "a", encoding="utf-8") as f:
                f.write(json.dumps(msg, ensure_ascii=False) + "\n")
        self._changed()

    def _setup(self, s: Session, msg: dict[str, Any]) -> None:
        setup = lookup(msg, "setup")
        if not isinstance(setup, dict) or len(msg) != 1:
            raise _Refused(1007, INVALID_ARGUMENT)
        s.setup = setup
        model = lookup(setup, "model")
        if not isinstance(model, str) or not model:
            raise _Refused(1007, INVALID_ARGUMENT)
        if self.opts.known_models and model.removeprefix("models/") not in {
                m.removeprefix("models/") for m in self.opts.known_models}:
            raise _Refused(1008, f"{model} is not found for API version {s.version}, or is not "
                                 "supported for bidiGenerateContent. Call ListModels to see the "
                                 "list of available models and their supported methods.")
        gen = lookup(setup, "generationConfig") or {}
        modalities = lookup(gen, "responseModalities") if isinstance(gen, dict) else None
        if modalities is not None:
            if (not isinstance(modalities, list) or len(modalities) != 1
                    or modalities[0] not in ("AUDIO", "TEXT")):
                raise _Refused(1007, INVALID_ARGUMENT)
            s.modality = modalities[0]
        ric = lookup(setup, "realtimeInputConfig") or {}
        aad = lookup(ric, "automaticActivityDetection") or {}
        s.manual_activity = bool(lookup(aad, "disabled"))
        s.interrupts = lookup(ric, "activityHandling") != "NO_INTERRUPTION"
        s.transcribe_in = lookup(setup, "inputAudioTranscription") is not None
        s.transcribe_out = lookup(setup, "outputAudioTranscription") is not None
        resumption = lookup(setup, "sessionResumption")
        s.resumable = resumption is not None
        handle = lookup(resumption, "handle") if isinstance(resumption, dict) else None
        if handle is not None and not isinstance(handle, str):
            raise _Refused(1007, INVALID_ARGUMENT)
        if handle:
            if handle not in self.handles:
                raise _Refused(1007, INVALID_ARGUMENT)
            s.history = list(self.handles[handle])
            s.resumed_from = handle

    # ------------------------------------------------------------ client messages

    async def _message(self, s: Session, msg: dict[str, Any]) -> None:
        if len(msg) != 1:
            raise _Refused(1007, INVALID_ARGUMENT)
        if (body := lookup(msg, "realtimeInput")) is not None:
            await self._realtime(s, body)
        elif (body := lookup(msg, "clientContent")) is not None:
            if not self._client_content(s, body) and s.resumable:
                await self._resumption_update(s)
        elif (body := lookup(msg, "toolResponse")) is not None:
            if not isinstance(body, dict):
                raise _Refused(1007, INVALID_ARGUMENT)
            s.history.append({"role": "user", "toolResponse": body})
            if s.resumable:
                await self._resumption_update(s)
        else:
            raise _Refused(1007, INVALID_ARGUMENT)

    async def _realtime(self, s: Session, body: Any) -> None:
        if not isinstance(body, dict):
            raise _Refused(1007, INVALID_ARGUMENT)
        if (blob := lookup(body, "audio")) is not None:
            self._audio_in(s, blob)
        for blob in lookup(body, "mediaChunks") or ():
            self._audio_in(s, blob)
        if lookup(body, "activityStart") is not None:
            await self._barge_in(s)
            s.in_activity = True
            s.audio.clear()
        if lookup(body, "activityEnd") is not None:
            s.in_activity = False
            self._begin_reply(s, pcm=bytes(s.audio), text=None)
        if lookup(body, "audioStreamEnd") and not s.manual_activity and s.audio:
            self._begin_reply(s, pcm=bytes(s.audio), text=None)
        if (typed := lookup(body, "text")) is not None:
            if not isinstance(typed, str):
                raise _Refused(1007, INVALID_ARGUMENT)
            await self._barge_in(s)
            self._begin_reply(s, pcm=None, text=typed)

    def _audio_in(self, s: Session, blob: Any) -> None:
        if not isinstance(blob, dict):
            raise _Refused(1007, INVALID_ARGUMENT)
        mime = lookup(blob, "mimeType") or ""
        try:
            data = b64decode(lookup(blob, "data") or "")
            rate = rate_from_mime(mime) if isinstance(mime, str) else None
        except ProtocolError:
            raise _Refused(1007, INVALID_ARGUMENT) from None
        if rate is None:
            return  # video and images are accepted and ignored
        if s.manual_activity and not s.in_activity:
            return  # outside activityStart/activityEnd the service ignores audio
        if rate != INPUT_RATE:
            pcm = np.frombuffer(data[: len(data) & ~1], dtype="<i2")
            data = soxr.resample(pcm, rate, INPUT_RATE).astype("<i2").tobytes()
        s.audio += data

    def _client_content(self, s: Session, body: Any) -> bool:
        """Add the turns to the history; True if a reply was started."""
        if not isinstance(body, dict):
            raise _Refused(1007, INVALID_ARGUMENT)
        turns = lookup(body, "turns") or []
        if isinstance(turns, dict):
            turns = [turns]
        if not isinstance(turns, list):
            raise _Refused(1007, INVALID_ARGUMENT)
        last = ""
        for turn in turns:
            if not isinstance(turn, dict):
                raise _Refused(1007, INVALID_ARGUMENT)
            texts = [p.get("text", "") for p in lookup(turn, "parts") or []
                     if isinstance(p, dict)]
            s.history.append({"role": lookup(turn, "role") or "user", "text": " ".join(texts)})
            last = " ".join(texts)
        if not lookup(body, "turnComplete"):
            return False
        s.history.pop()
        self._begin_reply(s, pcm=None, text=last)
        return True

    async def _barge_in(self, s: Session) -> None:
        if s.reply is None or s.reply.done() or not s.interrupts:
            return
        s.reply.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await s.reply
        s.history.append({"role": "model", "interrupted": True})
        await self._send(s, {"serverContent": {"interrupted": True}})
        await self._send(s, {"serverContent": {"turnComplete": True}})

    # ------------------------------------------------------------ replies

    def _begin_reply(self, s: Session, *, pcm: bytes | None, text: str | None) -> None:
        s.audio.clear()
        previous = s.reply
        s.reply = asyncio.get_running_loop().create_task(self._reply(s, pcm, text or "", previous))

    async def _reply(self, s: Session, pcm: bytes | None, text: str,
                     previous: asyncio.Task[None] | None) -> None:
        """Replies run one after another; cancelling one (barge-in) cancels those queued."""
        entry: dict[str, Any] = ({"role": "user", "audio_ms": len(pcm) // _BYTES_PER_MS_IN}
                                 if pcm is not None else {"role": "user", "text": text})
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
        except asyncio.CancelledError:
            if previous is not None:
                previous.cancel()
            s.history.append(entry)
            raise
        s.history.append(entry)
        with contextlib.suppress(ConnectionClosed):
            await self._reply_body(s, pcm, text)

    async def _reply_body(self, s: Session, pcm: bytes | None, text: str) -> None:
        self.replies += 1
        n = self.replies
        o = self.opts
        if o.malformed_every and n % o.malformed_every == 0:
            await self._send_raw(s, b'{"serverContent": ')
        if o.unknown_every and n % o.unknown_every == 0:
            await self._send_raw(s, b'{"someFutureField": {}}')
        heard_ms = len(pcm) // _BYTES_PER_MS_IN if pcm is not None else 0
        heard = f"<{heard_ms} ms of audio>" if pcm is not None else text
        answer = f"You said: {heard}"
        if pcm is not None and s.transcribe_in:
            await self._send(s, {"serverContent": {"inputTranscription": {
                "text": heard, "finished": True}}})
        out_ms = 0
        if s.modality == "TEXT" or o.mode == "text":
            for piece in (answer[: len(answer) // 2], answer[len(answer) // 2:]):
                await self._wait_unstalled(s)
                await self._send(s, {"serverContent": {"modelTurn": {"parts": [{"text": piece}]}}})
        else:
            if s.transcribe_out:
                await self._send(s, {"serverContent": {"outputTranscription": {"text": answer}}})
            out = _echo_audio(pcm) if pcm else _tone(min(2000, 200 + 20 * len(text)))
            if o.reply_max_ms:
                out = out[:o.reply_max_ms * OUTPUT_RATE * 2 // 1000]
            out_ms = len(out) * 1000 // (2 * OUTPUT_RATE)
            await self._stream(s, out)
        await self._send(s, {"serverContent": {"generationComplete": True}})
        prompt = heard_ms // 40 + len(text) // 4 + 1
        response = max(1, out_ms // 40 + len(answer) // 4)
        await self._send(s, {"serverContent": {"turnComplete": True}, "usageMetadata": {
            "promptTokenCount": prompt, "responseTokenCount": response,
            "totalTokenCount": prompt + response}})
        s.history.append({"role": "model", "text": answer, "audio_ms": out_ms})
        if s.resumable:
            await self._resumption_update(s)

    async def _stream(self, s: Session, out: bytes) -> None:
        step = OUTPUT_RATE * 2 * CHUNK_MS // 1000
        chunks = range(0, len(out), step)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i, pos in enumerate(chunks):
            if self._close_mid_reply and i == len(chunks) // 2:
                code, reason = self._close_mid_reply
                self._close_mid_reply = None
                await self._close(s, code, reason)
                return
            await self._wait_unstalled(s)
            if self.opts.pace == "realtime":
                due = t0 + (i * CHUNK_MS + random.uniform(-1, 1) * self.opts.jitter_ms) / 1000
                await asyncio.sleep(max(0.0, due - loop.time()))
            if self._drip_ms:
                await asyncio.sleep(self._drip_ms / 1000)
            chunk, rate = out[pos:pos + step], OUTPUT_RATE
            corrupt, arg = self._corrupt.popleft() if self._corrupt else ("", 0)
            if corrupt == "bad_base64":
                await self._send_raw(s, _audio_frame(chunk, rate).replace(b'"data":"',
                                                                           b'"data":"*!'))
                continue
            if corrupt == "odd_pcm":
                chunk = chunk[:-1]
            elif corrupt == "rate":
                rate = arg
            await self._send_raw(s, _audio_frame(chunk, rate))
            self.audio_sent.append((time.monotonic(), chunk))

    async def _resumption_update(self, s: Session) -> None:
        handle = f"emu-{s.id}-{secrets.token_hex(6)}"
        self.handles[handle] = tuple(dict(t) for t in s.history)
        # int64 in proto JSON is a string, as the service sends it.
        await self._send(s, {"sessionResumptionUpdate": {
            "newHandle": handle, "resumable": True,
            "lastConsumedClientMessageIndex": str(s.messages - 1)}})

    # ------------------------------------------------------------ sending and faults

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

    async def _go_away(self, s: Session, time_left_s: float, close: bool) -> None:
        await self._send(s, {"goAway": {"timeLeft": f"{time_left_s:g}s"}})
        if close:
            await asyncio.sleep(time_left_s)
            await self._close(s, 1000, "")

    def _stall(self, s: Session, seconds: float) -> None:
        s.stalled_until = time.monotonic() + seconds
        if s.ws.transport is not None:
            s.ws.transport.pause_reading()
        asyncio.get_running_loop().call_later(seconds, self._unstall, s)

    async def _stall_async(self, s: Session, seconds: float) -> None:
        self._stall(s, seconds)

    @staticmethod
    def _unstall(s: Session) -> None:
        if s.ws.transport is not None and not s.ws.transport.is_closing():
            s.ws.transport.resume_reading()

    @staticmethod
    async def _wait_unstalled(s: Session) -> None:
        left = s.stalled_until - time.monotonic()
        if left > 0:
            await asyncio.sleep(left)


def _audio_frame(pcm: bytes, rate: int) -> bytes:
    return (b'{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm;rate='
            + str(rate).encode() + b'","data":"' + base64.b64encode(pcm) + b'"}}]}}}')


def _echo_audio(pcm: bytes) -> bytes:
    samples = np.frombuffer(pcm[: len(pcm) & ~1], dtype="<i2")
    return soxr.resample(samples, INPUT_RATE, OUTPUT_RATE).astype("<i2").tobytes()


def _tone(ms: int, hz: float = 440.0) -> bytes:
    t = np.arange(OUTPUT_RATE * ms // 1000) / OUTPUT_RATE
    return (np.sin(2 * math.pi * hz * t) * 8000).astype("<i2").tobytes()


class EmulatorThread:
    """The emulator on its own loop in a background thread, for tests whose client runs
    elsewhere (another loop, or `pttd run` as a subprocess).

        with EmulatorThread(EmulatorOptions(pace="burst")) as emu:
            ...connect to emu.url...; emu.inject("close", code=1011)
            emu.wait_for(lambda e: len(e.sessions) == 2)
    """

    def __init__(self, opts: EmulatorOptions | None = None, **overrides: Any) -> None:
        self.opts = replace(opts or EmulatorOptions(), **overrides)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="emulator",
                                        daemon=True)
        self._changed = threading.Condition()
        self.emulator = Emulator(self.opts, on_change=self._notify)
        self.url = ""

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        self._run(self.emulator.start())
        self.url = self.emulator.url
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self.emulator.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def call(self, fn: Callable[[Emulator], Any]) -> Any:
        """Run fn(emulator) on the emulator's loop and return its result (directly once the
        emulator has stopped, so tests can inspect it after the `with` block)."""
        if not self._thread.is_alive():
            return fn(self.emulator)

        async def run() -> Any:
            return fn(self.emulator)
        return self._run(run())

    def inject(self, kind: str, **kw: Any) -> None:
        self.call(lambda e: e.inject(kind, **kw))

    def wait_for(self, predicate: Callable[[Emulator], bool], timeout: float = 10.0) -> None:
        """Block until predicate(emulator), evaluated on the emulator's loop, holds."""
        deadline = time.monotonic() + timeout
        while not self.call(predicate):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"emulator condition not met within {timeout:g} s")
            with self._changed:
                self._changed.wait(min(left, 0.05))

    @property
    def frames(self) -> list[tuple[int, Any]]:
        return self.call(lambda e: list(e.frames))

    @property
    def sessions(self) -> list[Session]:
        return self.call(lambda e: list(e.sessions))


def options_from_args(args: argparse.Namespace) -> EmulatorOptions:
    return EmulatorOptions(
        host=args.host, port=args.port, mode=args.mode, pace=args.pace,
        text_frames=args.text_frames, drip_ms=args.drip_ms, go_away_after=args.go_away_after,
        go_away_time_left=args.go_away_time_left, close_after=args.close_after,
        close_code=args.close_code, close_reason=args.close_reason,
        reject_status=args.reject_status, stall_after=args.stall_after,
        malformed_every=args.malformed_every, unknown_every=args.unknown_every,
        api_key=args.api_key, record=args.record)


async def _serve(opts: EmulatorOptions) -> None:
    emulator = Emulator(opts)
    await emulator.start()
    print(f"pttd emulator listening on {emulator.url} (mode {opts.mode}, pace {opts.pace}); "
          f"endpoint for pttd: {emulator.url}", flush=True)
    try:
        await asyncio.Future()
    finally:
        await emulator.stop()


def main(args: argparse.Namespace) -> int:
    """`pttd emulator`: serve until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.record:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(_serve(options_from_args(args)))
    except OSError as exc:
        print(f"pttd emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}")
        return 1
    return 0
