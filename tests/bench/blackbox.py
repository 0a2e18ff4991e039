"""Latency measured outside the client: the bench plays the user's voice into the null sink
(the client's microphone is the sink's monitor) and listens to what the sink plays.

- input marker: a loud 10 ms tone burst 1 s into each held turn; latency = its arrival at the
  emulator minus the moment the room's sink played it (the moment the bench handed it to ALSA
  plus what the bench's own ALSA buffer still held ahead of it, known to half a period).
- reply marker: the echoed reply carries the same burst back; latency = the first 10 ms in
  which the sink plays it minus the moment it was due (the emulator, pacing in real time,
  handed its chunk to the socket, plus its offset in that chunk).
- barge-in: while the reply (an echoed steady tone) plays, the bench presses; latency = the
  first moment the sink is silent minus the press.
All include the null sink's own latency, the same for every client measured.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import alsaaudio
import numpy as np

from daemon.live.protocol import b64decode

RATE = 16000
PERIOD = 160                      # 10 ms
# The voice is played into the room in a 4 x 100 ms buffer: a low-latency player would make the
# room's sink, and so the client's microphone, run in 10 ms blocks, whatever the client asks.
VOICE_PERIOD = 1600
MARKER_AT = RATE                  # 1 s into the turn
MARKER = (30000 * np.sin(2 * np.pi * 1000 * np.arange(RATE // 100) / RATE)).astype(np.int16)
MARKER_THRESHOLD = 20000
MARKER_RMS = 8000.0          # a 10 ms read holding at least half the burst; speech stays below
REPLY_RATE = 24000
SILENT_RMS = 300.0
SILENT_READS = 25  # 250 ms: a gap in a stuttering reply is not its end
REPLY_OVER_S = 0.8  # longer than the pauses between the echoed phrases


class Player:
    """Writes the user's voice into the room in real time: silence, speech or a steady tone."""

    def __init__(self, device: str, speech: np.ndarray) -> None:
        peak = max(1, int(np.abs(speech).max()))
        self.speech = (speech.astype(np.float32) * (6000 / peak)).astype(np.int16)
        self.speech[MARKER_AT:MARKER_AT + len(MARKER)] = MARKER
        self.tone = (12000 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.int16)
        self.mode = "silence"
        self.pos = 0
        self._next: str | None = None
        self.marker_written_at: float | None = None
        self._pcm = alsaaudio.PCM(alsaaudio.PCM_PLAYBACK, device=device, rate=RATE, channels=1,
                                  format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=VOICE_PERIOD,
                                  periods=4)
        info = self._pcm.info()
        # A blocking writer keeps its buffer full to within a period: ahead of each write lies
        # the buffer less half a period, on average.
        self._ahead_s = (int(info["buffer_size"]) - int(info["period_size"]) / 2) / RATE
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def play(self, mode: str) -> None:
        """Switch what is played; speech and tone start from their beginning."""
        self.marker_written_at = None
        self._next = mode

    def _run(self) -> None:
        silence = np.zeros(PERIOD, dtype=np.int16)
        while not self._stop:
            if self._next is not None:
                self.mode, self.pos, self._next = self._next, 0, None
            mode, pos = self.mode, self.pos
            if mode == "speech":
                chunk = self.speech[pos % len(self.speech):][:PERIOD]
            elif mode == "tone":
                chunk = self.tone[pos % RATE:][:PERIOD]
            else:
                chunk = silence
            if len(chunk) < PERIOD:
                chunk = np.concatenate([chunk, silence[:PERIOD - len(chunk)]])
            self._pcm.write(chunk.tobytes())
            if mode == "speech" and pos <= MARKER_AT < pos + PERIOD:
                behind = (pos + PERIOD - MARKER_AT) / RATE
                self.marker_written_at = time.monotonic() + self._ahead_s - behind
            self.pos = pos + PERIOD

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self._pcm.close()


class Listener:
    """Reads what the sink plays, 10 ms at a time, with the time each read returned."""

    def __init__(self, device: str) -> None:
        self._pcm = alsaaudio.PCM(alsaaudio.PCM_CAPTURE, device=device, rate=RATE, channels=1,
                                  format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=PERIOD)
        self.levels: deque[tuple[float, float]] = deque(maxlen=3000)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            n, data = self._pcm.read()
            if n > 0:
                x = np.frombuffer(data, dtype="<i2").astype(np.float32)
                self.levels.append((time.monotonic(), float(np.sqrt((x * x).mean()))))

    def silent_after(self, t: float, timeout: float = 2.0) -> float | None:
        """Seconds from t to the start of the first 250 ms of silence; None when the sink was
        already silent at t (a gap in the reply, not the press, silenced it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            after = [(ts, rms) for ts, rms in list(self.levels) if ts >= t]
            for i in range(len(after) - SILENT_READS + 1):
                if all(rms < SILENT_RMS for _, rms in after[i:i + SILENT_READS]):
                    start = after[i][0] - PERIOD / RATE
                    return start - t if start >= t else None
            time.sleep(0.05)
        return None

    def marker_heard(self, due: float, timeout: float = 1.0) -> float | None:
        """When the sink first played the marker burst at or after `due` (None: not within
        `timeout`)."""
        for ts, rms in list(self.levels):
            if due <= ts <= due + timeout and rms > MARKER_RMS:
                return ts
        return None

    def reply_over(self, since: float, quiet_s: float = REPLY_OVER_S) -> bool:
        """The sink played something after `since` and has been silent for `quiet_s` since."""
        levels = [(ts, rms) for ts, rms in list(self.levels) if ts >= since]
        loud = [ts for ts, rms in levels if rms >= SILENT_RMS]
        if not loud or not levels:
            return False
        return levels[-1][0] - loud[-1] >= quiet_s

    def first_loud_after(self, t: float) -> float | None:
        """When the first loud 10 ms read at or after `t` began (None: none yet)."""
        for ts, rms in list(self.levels):
            if ts - PERIOD / RATE >= t and rms > SILENT_RMS * 4:
                return ts - PERIOD / RATE
        return None

    def gaps_after(self, start: float) -> int:
        """Runs of silent reads between the first and the last loud read from `start` on: the
        gaps heard inside a steady reply."""
        levels = [rms for ts, rms in list(self.levels) if ts > start]
        loud = [i for i, rms in enumerate(levels) if rms > SILENT_RMS * 4]
        if not loud:
            return 0
        inside = levels[loud[0]:loud[-1] + 1]
        return sum(1 for i, rms in enumerate(inside)
                   if rms < SILENT_RMS and (i == 0 or inside[i - 1] >= SILENT_RMS))

    def loud_before(self, t: float) -> bool:
        return any(rms > SILENT_RMS * 4 for ts, rms in list(self.levels) if t - 0.1 <= ts < t)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self._pcm.close()


def marker_arrival(frames: list[tuple[int, object]], times: list[float],
                   since: float) -> float | None:
    """When the first uploaded audio frame after `since` carrying the marker reached the server."""
    for (_, msg), t in zip(frames, times, strict=True):
        if t < since or not isinstance(msg, dict):
            continue
        audio = msg.get("realtimeInput", msg.get("realtime_input", {}))
        if not isinstance(audio, dict) or "audio" not in audio:
            continue
        data = b64decode(audio["audio"]["data"])
        if len(data) >= 2 and np.abs(np.frombuffer(data, dtype="<i2")).max() > MARKER_THRESHOLD:
            return t
    return None


def reply_marker_due(audio_sent: list[tuple[float, bytes]], since: float) -> float | None:
    """When the marker echoed in the reply was due to play: its chunk's send time plus its
    offset in the chunk."""
    for t, chunk in audio_sent:
        if t < since:
            continue
        loud = np.flatnonzero(np.abs(np.frombuffer(chunk, dtype="<i2")) > MARKER_THRESHOLD)
        if loud.size:
            return t + loud[0] / REPLY_RATE
    return None
