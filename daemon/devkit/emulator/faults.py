"""Faults the emulator can inject, by option or at run time: closes, goAway, stalls, bad frames,
refused upgrades, a slow setup, a slow drip."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from websockets.exceptions import ConnectionClosed

from daemon.devkit.emulator.state import Core, Session, audio_frame, log
from daemon.live.protocol import OUTPUT_RATE


class Faults(Core):
    """Fault injection; `inject(kind, ...)` calls `fault_<kind>(...)`."""

    def inject(self, kind: str, **kw: Any) -> None:
        """Apply a fault now (or to the next reply/upgrade); kinds are the fault_* methods."""
        method = getattr(self, "fault_" + kind, None)
        if method is None:
            kinds = sorted(n[6:] for n in dir(self) if n.startswith("fault_"))
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(kinds)}")
        log.info("fault injected: %s %s", kind, kw or "")
        method(**kw)

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
        self.fault_raw(audio_frame(bytes(nbytes - nbytes % 2), OUTPUT_RATE))

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
        deadline = (o.session_deadline_s if o.session_deadline_s is not None
                    else s.rules.session_limit_s)
        if deadline:
            out.append(loop.create_task(self._after(deadline, self._close(
                s, 1011, "Deadline expired"))))
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
