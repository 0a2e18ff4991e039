"""The per-session reply logic: what the emulator does with each client message, and the
replies it streams back (echoed audio, a tone for typed text, text in TEXT sessions)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import secrets
import time
from typing import Any

import numpy as np
import soxr
from websockets.exceptions import ConnectionClosed

from daemon.devkit.emulator.state import (
    CHUNK_MS,
    INVALID_ARGUMENT,
    Core,
    Refused,
    Session,
    audio_frame,
)
from daemon.live.protocol import (
    INPUT_RATE,
    OUTPUT_RATE,
    ProtocolError,
    b64decode,
    lookup,
    rate_from_mime,
)

_BYTES_PER_MS_IN = INPUT_RATE * 2 // 1000


class Replies(Core):
    """Client messages in, replies out, one session at a time."""

    async def _message(self, s: Session, msg: dict[str, Any]) -> None:
        if len(msg) != 1:
            raise Refused(1007, INVALID_ARGUMENT)
        if (body := lookup(msg, "realtimeInput")) is not None:
            await self._realtime(s, body)
        elif (body := lookup(msg, "clientContent")) is not None:
            if s.rules.client_content_roles and isinstance(body, dict) \
                    and lookup(body, "turnComplete"):
                await self._barge_in(s)     # turnComplete: true interrupts the generation
            if not self._client_content(s, body) and s.resumable:
                await self._resumption_update(s)
        elif (body := lookup(msg, "toolResponse")) is not None:
            if not isinstance(body, dict):
                raise Refused(1007, INVALID_ARGUMENT)
            s.history.append({"role": "user", "toolResponse": body})
            if (follow_up := self.tools.received(body)) is not None:
                said, scheduling = follow_up
                if scheduling == "INTERRUPT":
                    await self._barge_in(s)
                self._begin_reply(s, pcm=None, text=said, follow_up=True)
            if s.resumable:
                await self._resumption_update(s)
        else:
            raise Refused(1007, INVALID_ARGUMENT)

    async def _realtime(self, s: Session, body: Any) -> None:
        if not isinstance(body, dict):
            raise Refused(1007, INVALID_ARGUMENT)
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
                raise Refused(1007, INVALID_ARGUMENT)
            await self._barge_in(s)
            self._begin_reply(s, pcm=None, text=typed)

    def _audio_in(self, s: Session, blob: Any) -> None:
        if not isinstance(blob, dict):
            raise Refused(1007, INVALID_ARGUMENT)
        mime = lookup(blob, "mimeType") or ""
        try:
            data = b64decode(lookup(blob, "data") or "")
            rate = rate_from_mime(mime) if isinstance(mime, str) else None
        except ProtocolError:
            raise Refused(1007, INVALID_ARGUMENT) from None
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
            raise Refused(1007, INVALID_ARGUMENT)
        turns = lookup(body, "turns") or []
        if isinstance(turns, dict):
            turns = [turns]
        if not isinstance(turns, list):
            raise Refused(1007, INVALID_ARGUMENT)
        last = ""
        for turn in turns:
            if not isinstance(turn, dict):
                raise Refused(1007, INVALID_ARGUMENT)
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
        end = self.opts.barge_in_end
        if end == "silent":
            return
        if end == "interrupted" or s.rules.sends_interrupted:
            await self._send(s, {"serverContent": {"interrupted": True}})
        await self._send(s, {"serverContent": self._turn_complete(s)})

    @staticmethod
    def _turn_complete(s: Session, **fields: Any) -> dict[str, Any]:
        """turnComplete, with the interactionStatus the model sends alongside it."""
        content: dict[str, Any] = {"turnComplete": True, **fields}
        if s.rules.interaction_status:
            content["interactionStatus"] = "IDLE"
        return content

    # ------------------------------------------------------------ replies

    def _begin_reply(self, s: Session, *, pcm: bytes | None, text: str | None,
                     follow_up: bool = False) -> None:
        """A model turn answering the user's, or (`follow_up`) one of its own that speaks
        `text`: a background function's answer (tool_script, `later` turns)."""
        if not follow_up:
            s.audio.clear()
        previous = s.reply
        s.reply = asyncio.get_running_loop().create_task(
            self._reply(s, pcm, text or "", previous, follow_up))

    async def _reply(self, s: Session, pcm: bytes | None, text: str,
                     previous: asyncio.Task[None] | None, follow_up: bool) -> None:
        """Replies run one after another; cancelling one (barge-in) cancels those queued."""
        entry: dict[str, Any] | None = None   # a follow-up's toolResponse is in the history
        if not follow_up:
            entry = ({"role": "user", "audio_ms": len(pcm) // _BYTES_PER_MS_IN}
                     if pcm is not None else {"role": "user", "text": text})
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
        except asyncio.CancelledError:
            if previous is not None:
                previous.cancel()
            if entry is not None:
                s.history.append(entry)
            raise
        if entry is not None:
            s.history.append(entry)
        with contextlib.suppress(ConnectionClosed):
            await self._reply_body(s, pcm, text, follow_up)

    async def _reply_body(self, s: Session, pcm: bytes | None, text: str,
                          follow_up: bool = False) -> None:
        self.replies += 1
        n = self.replies
        o = self.opts
        if o.malformed_every and n % o.malformed_every == 0:
            await self._send_raw(s, b'{"serverContent": ')
        if o.unknown_every and n % o.unknown_every == 0:
            await self._send_raw(s, b'{"someFutureField": {}}')
        scripted = ("", text) if follow_up else await self.tools.play(s, self._send)
        heard_ms = len(pcm) // _BYTES_PER_MS_IN if pcm is not None else 0
        if scripted is None and pcm is not None and heard_ms < o.need_more_input_below_ms \
                and s.rules.waiting_for_input:
            await self._send(s, {"serverContent": self._turn_complete(
                s, turnCompleteReason="NEED_MORE_INPUT", waitingForInput=True),
                "usageMetadata": _usage(heard_ms // 40 + 1, 0)})
            if s.resumable:
                await self._resumption_update(s)
            return
        heard = f"<{heard_ms} ms of audio>" if pcm is not None else text
        answer = f"You said: {heard}"
        if scripted is not None:
            heard, answer = scripted
            pcm, text = None, answer
        if pcm is not None and s.transcribe_in:
            await self._send(s, {"serverContent": {"inputTranscription": {
                "text": heard, "finished": True}}})
        out_ms = 0
        # An empty answer: a scripted turn the model answers with its calls alone.
        if answer and (s.modality == "TEXT" or o.mode == "text"):
            for piece in (answer[: len(answer) // 2], answer[len(answer) // 2:]):
                await self._wait_unstalled(s)
                await self._send(s, {"serverContent": {"modelTurn": {"parts": [{"text": piece}]}}})
        elif answer:
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
        await self._send(s, {"serverContent": self._turn_complete(s),
                             "usageMetadata": _usage(prompt, response)})
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
                await self._send_raw(s, audio_frame(chunk, rate).replace(b'"data":"',
                                                                           b'"data":"*!'))
                continue
            if corrupt == "odd_pcm":
                chunk = chunk[:-1]
            elif corrupt == "rate":
                rate = arg
            await self._send_raw(s, audio_frame(chunk, rate))
            self.audio_sent.append((time.monotonic(), chunk))

    async def _resumption_update(self, s: Session) -> None:
        handle = f"emu-{s.id}-{secrets.token_hex(6)}"
        self.handles[handle] = tuple(dict(t) for t in s.history)
        # int64 in proto JSON is a string, as the service sends it.
        await self._send(s, {"sessionResumptionUpdate": {
            "newHandle": handle, "resumable": True,
            "lastConsumedClientMessageIndex": str(s.messages - 1)}})


def _usage(prompt: int, response: int) -> dict[str, int]:
    return {"promptTokenCount": prompt, "responseTokenCount": response,
            "totalTokenCount": prompt + response}


def _echo_audio(pcm: bytes) -> bytes:
    samples = np.frombuffer(pcm[: len(pcm) & ~1], dtype="<i2")
    return soxr.resample(samples, INPUT_RATE, OUTPUT_RATE).astype("<i2").tobytes()


def _tone(ms: int, hz: float = 440.0) -> bytes:
    t = np.arange(OUTPUT_RATE * ms // 1000) / OUTPUT_RATE
    return (np.sin(2 * math.pi * hz * t) * 8000).astype("<i2").tobytes()


