"""The emulator's server: the WebSocket upgrade (path, key, refusals), the setup handshake, and
the loop that hands each client message to the reply logic."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from daemon.devkit.emulator.faults import Faults
from daemon.devkit.emulator.replies import Replies
from daemon.devkit.emulator.rules import rejected
from daemon.devkit.emulator.state import (
    INVALID_ARGUMENT,
    Refused,
    Session,
    invalid_argument,
    log,
)
from daemon.live.models import rules_for
from daemon.live.protocol import lookup

# websockets logs request headers (the client's API key among them) at debug level: never let it.
_WS_LOG = logging.getLogger("pttd.emulator.websocket")
_WS_LOG.setLevel(logging.INFO)

PATH_RE = re.compile(r"/ws/google\.ai\.generativelanguage\.(v1|v1beta|v1alpha)\."
                     r"GenerativeService\.(BidiGenerateContent|BidiGenerateContentConstrained)")
NO_KEY = ("Method doesn't allow unregistered callers (callers without established identity). "
          "Please use API Key or other form of API consumer identity to call this API.")
BAD_KEY = "API key not valid. Please pass a valid API key."


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

class Emulator(Faults, Replies):
    """The server. start()/stop() on a running loop; see EmulatorThread for use from tests."""

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
                raise Refused(1008, NO_KEY)
            if self.opts.api_key is not None and key != self.opts.api_key:
                raise Refused(1007, BAD_KEY)
            first = self._decode(s, await ws.recv())
            with invalid_argument():
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
                with invalid_argument():
                    await self._message(s, msg)
        except Refused as exc:
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

    def _decode(self, s: Session, raw: str | bytes) -> dict[str, Any]:
        try:
            msg = json.loads(raw)
        except ValueError:
            self._keep(s, {"invalidFrame": str(raw[:200])})
            raise Refused(1007, INVALID_ARGUMENT) from None
        self._keep(s, msg)
        if not isinstance(msg, dict):
            raise Refused(1007, INVALID_ARGUMENT)
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
            raise Refused(1007, INVALID_ARGUMENT)
        s.setup = setup
        model = lookup(setup, "model")
        if not isinstance(model, str) or not model:
            raise Refused(1007, INVALID_ARGUMENT)
        if self.opts.known_models and model.removeprefix("models/") not in {
                m.removeprefix("models/") for m in self.opts.known_models}:
            raise Refused(1008, f"{model} is not found for API version {s.version}, or is not "
                                 "supported for bidiGenerateContent. Call ListModels to see the "
                                 "list of available models and their supported methods.")
        s.rules = rules_for(model)
        s.refused = rejected(setup, s.rules)
        if s.refused:
            log.info("session %d: %s rejects %s", s.id, model, s.refused)
            raise Refused(1007, INVALID_ARGUMENT)
        gen = lookup(setup, "generationConfig") or {}
        modalities = lookup(gen, "responseModalities") if isinstance(gen, dict) else None
        if modalities is not None:
            if (not isinstance(modalities, list) or len(modalities) != 1
                    or modalities[0] not in ("AUDIO", "TEXT")):
                raise Refused(1007, INVALID_ARGUMENT)
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
            raise Refused(1007, INVALID_ARGUMENT)
        if handle:
            if handle not in self.handles:
                raise Refused(1007, INVALID_ARGUMENT)
            s.history = list(self.handles[handle])
            s.resumed_from = handle
