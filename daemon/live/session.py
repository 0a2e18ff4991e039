"""The Live session's policy, sans I/O: what to send, when to replace a connection, how to retry.

One logical session outlives many WebSocket connections. This module decides everything about
it and touches nothing: the shell (client.py) reports what happened (a connection is ready or
lost, a server event, the time) and asks for frames to write; the answers are bytes to put on
the current connection and decisions (state, "open a standby now", "switch now", "retry in N s"
with a failure class and a problem text a user can act on). The clock is always passed in, so
every rule is a plain unit test.

    >>> s = Session(LiveConfig(), key_source="/etc/pttd/api-key")
    >>> s.connecting()        # the handle to resume with: none yet
    >>> s.opened(now=0.0, resumed=False)
    []
    >>> s.activity_start()
    b'{"realtimeInput":{"activityStart":{}}}'
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from config import LiveConfig
from daemon.live import protocol
from daemon.live.failures import (
    RETRY_S,
    Failure,
    Retry,
    classify_close,
    classify_error,
    human,
)
from daemon.live.models import DEFAULT_MODEL, rules_for
from daemon.live.protocol import (
    AudioChunk,
    Event,
    GoAway,
    OutputTranscription,
    SessionResumptionUpdate,
    TextPart,
    TurnComplete,
)
from hw.backoff import Backoff

RENEW_WITHIN_S = 300.0     # a replacement is due: it is taken at a pause, at the latest by then
LIMIT_MARGIN_S = 60.0      # replace a session this long before the model's known limit
GO_AWAY_DEFAULT_S = 30.0   # a goAway that does not say how soon
STABLE_S = 30.0            # a session that lived this long resets the backoff



class State(StrEnum):
    OFFLINE = "offline"
    CONNECTING = "connecting"
    READY = "ready"


class Step(Enum):
    """What the shell should do now about the connection, from Session.poll()."""

    NOTHING = "nothing"
    OPEN_STANDBY = "open a standby"
    DISCARD_STANDBY = "discard the standby"
    SWITCH = "switch to the standby"
    SEND_CONTEXT = "send the context update"


@dataclass(frozen=True, slots=True)
class _Standby:
    """A replacement being opened (ready=False) or open; valid while nothing it missed changed."""

    ready: bool
    turns: int
    handle: str | None
    generation: int


class Session:
    """The policy of one logical Live session, kept apart from the socket so it is unit-tested.

    LiveClient reports connections, losses, events and the time, and writes the frames it gets
    back; `poll(now)` says what to do about the connection next. See the module docstring for
    an example.
    """

    def __init__(self, cfg: LiveConfig, *, key_source: str,
                 rand: Callable[[], float] = random.random,
                 tools: Sequence[Mapping[str, Any]] = ()) -> None:
        self._key_source = key_source
        self._tools = tools          # function declarations offered in every setup
        self._rand = rand
        self.state = State.OFFLINE
        self.handle: str | None = None
        self.problem = ""            # what a user should fix, for `pttd status` and STATUS=
        self._generation = 0         # bumped by each reload that changes the setup or URL
        self._last: Failure | None = None
        self._ready_at = 0.0
        self._resuming = False
        self._context: bytes | None = None   # a context update waiting for a pause
        # Turn tracking: a replacement is taken only between turns, with a handle that
        # already holds the last turn.
        self._in_activity = False
        self._awaiting_reply = False
        self._turns = 0
        self._handle_fresh = False
        self._deadline: float | None = None  # the current connection must be replaced by then
        self._replace_from = 0.0
        self._latest_open = 0.0
        self._standby: _Standby | None = None
        self._configure(cfg)

    def _configure(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        self.rules = rules_for(cfg.model)
        self.version, self.version_why = protocol.choose_api_version(cfg)
        self.url = cfg.endpoint.rstrip("/") + protocol.ws_path(self.version)
        self._backoffs = {kind: Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s, self._rand)
                          for kind in ("transient", "rejected")}
        for kind, (lo, hi) in RETRY_S.items():
            self._backoffs[kind] = Backoff(max(lo, cfg.reconnect_min_s),
                                           max(hi, cfg.reconnect_max_s), self._rand)

    @property
    def quiet(self) -> bool:
        """Neither is the user speaking nor is a reply owed or under way."""
        return not self._in_activity and not self._awaiting_reply

    # ------------------------------------------------------------ frames to send

    def activity_start(self) -> bytes | None:
        if self.state is not State.READY:
            return None
        self._turn_started()
        self._in_activity = True
        return protocol.activity_start()

    def audio(self, pcm: bytes | bytearray | memoryview) -> bytes | None:
        if self.state is not State.READY:
            return None
        if not self._in_activity and self.cfg.turn_detection == "server":
            self._turn_started()
            self._in_activity = True
        return protocol.audio(pcm)

    def activity_end(self) -> bytes | None:
        return self._speech_ended(protocol.activity_end())

    def audio_stream_end(self) -> bytes | None:
        return self._speech_ended(protocol.audio_stream_end())

    def _speech_ended(self, frame: bytes) -> bytes | None:
        """The user stopped talking (button or server VAD): from now on a reply is owed."""
        if self.state is not State.READY:
            return None
        self._in_activity = False
        self._awaiting_reply = True
        return frame

    def tool_response(self, responses: Iterable[protocol.FunctionResponse]) -> bytes | None:
        return protocol.tool_response(responses) if self.state is State.READY else None

    def client_content(self, turns: Iterable[tuple[str, str]], *,
                       turn_complete: bool) -> bytes | None:
        if self.state is not State.READY:
            return None
        if turn_complete:
            self._turn_started()
            self._awaiting_reply = True
        return protocol.client_content(turns, turn_complete=turn_complete)

    def _turn_started(self) -> None:
        self._turns += 1
        self._handle_fresh = False
        self._awaiting_reply = False

    # ------------------------------------------------------------ connections

    def setup_frame(self, handle: str | None) -> bytes:
        return protocol.setup(self.cfg, handle, self._tools)

    def connecting(self) -> str | None:
        """A connection is being opened; returns the handle to resume with (None: fresh)."""
        self.state = State.CONNECTING
        self._resuming = self.handle is not None
        return self.handle

    def opened(self, now: float, *, resumed: bool) -> list[bytes]:
        """setupComplete on a new current connection; the frames to send on it first."""
        self.state = State.READY
        self._last = None
        self.problem = ""
        self._connection_started(now, resumed)
        return self._first_frames(resumed)

    def _connection_started(self, now: float, resumed: bool) -> None:
        self._ready_at = now
        self._deadline = None
        self._standby = None
        if not resumed:
            self._handle_fresh = False
        limit = self.rules.session_limit_s
        if limit is not None:
            self._plan_replacement(now, now + limit - LIMIT_MARGIN_S,
                                   start=now + limit - LIMIT_MARGIN_S - RENEW_WITHIN_S)

    def _first_frames(self, resumed: bool) -> list[bytes]:
        if not resumed:
            self._context = None
            context = protocol.initial_context(self.cfg)
            return [context] if context is not None else []
        return []

    def open_failed(self, exc: BaseException) -> Retry:
        """Opening a connection failed: retry, at once and fresh when a resumption was refused."""
        failure = classify_error(exc)
        if self._resuming and failure.kind == "config":
            self.handle = None
            return Retry(0.0, failure, f"could not resume the conversation ({failure.detail}); "
                                       "starting a fresh one", logging.WARNING)
        return self._retry(failure)

    def lost(self, now: float, code: int | None, reason: str, *, stalled: bool = False) -> Retry:
        """The current connection closed; the turn in flight is lost with it."""
        self.state = State.CONNECTING
        self._in_activity = self._awaiting_reply = False
        self._deadline, self._standby = None, None
        if now - self._ready_at >= STABLE_S:
            for backoff in self._backoffs.values():
                backoff.reset()
        if stalled:
            return self._retry(Failure("transient", "the connection stalled: the network "
                                                    "stopped taking our data"))
        failure = classify_close(code, reason)
        if failure.kind == "config":
            # The setup was accepted, so this is about one request (e.g. the intermittent 1008
            # on tool calls), not the configuration: say so, and resume quickly.
            failure = Failure("rejected", failure.detail)
        return self._retry(failure)

    def retrying(self) -> None:
        """The shell waits out a retry delay."""
        self.state = State.OFFLINE

    def closed(self) -> None:
        self.state = State.OFFLINE
        self._deadline, self._standby = None, None

    def _retry(self, failure: Failure) -> Retry:
        delay = self._backoffs[failure.kind].next()
        retry = f"retrying in {human(delay)}"
        level, line = logging.WARNING, f"Live session lost ({failure.detail}); {retry}"
        if failure.kind == "auth":
            level = logging.ERROR
            self.problem = f"the Live API rejected the API key from {self._key_source}"
            line = f"{self.problem} ({failure.detail}); check the key; {retry}"
        elif failure.model_missing:
            level = logging.ERROR
            self.problem = (f'[live] model = "{self.cfg.model}" is not found by the Live API: '
                            f'set a current Live model (e.g. "{DEFAULT_MODEL}")')
            line = f"{self.problem} ({failure.detail}); {retry}"
        elif failure.kind == "config":
            level = logging.ERROR
            self.problem = (f'the Live API refused the session setup: check [live] model = '
                            f'"{self.cfg.model}" and api_version ({self.version}) and the '
                            "other [live] settings")
            line = (f"the Live API refused the session setup ({failure.detail}): check "
                    f'[live] model = "{self.cfg.model}" and api_version ({self.version}) '
                    f"and the other [live] settings; {retry}")
        elif failure.kind == "rejected":
            level = logging.ERROR
            line = f"the Live API ended the session over a request ({failure.detail}); {retry}"
        elif failure.kind == "quota":
            self.problem = "the Live API is over quota or busy"
            line = f"{self.problem} ({failure.detail}); {retry}"
        if failure == self._last:
            level = logging.DEBUG
        self._last = failure
        return Retry(delay, failure, line, level)

    # ------------------------------------------------------------ server events

    def on_event(self, event: Event, now: float) -> bool:
        """True when poll() may now answer differently: reply content only makes the session
        busier, which holds steps back and never brings one on, so it needs no look."""
        if isinstance(event, (AudioChunk, TextPart, OutputTranscription)):
            if not self._in_activity:
                self._awaiting_reply = True
            return False
        if isinstance(event, TurnComplete):
            self._awaiting_reply = False
        elif isinstance(event, SessionResumptionUpdate):
            if event.resumable and event.handle:
                self.handle = event.handle
                self._handle_fresh = self.quiet
            else:
                self._handle_fresh = False
        elif isinstance(event, GoAway):
            left = event.time_left_s if event.time_left_s is not None else GO_AWAY_DEFAULT_S
            self._plan_replacement(now, now + left, start=now)
        return True

    # ------------------------------------------------------------ replacing the connection

    def reconfigure(self, cfg: LiveConfig, now: float) -> str:
        """Apply a reloaded [live] section; returns what it changes for the session ("" if
        nothing). A changed setup or URL renews the connection between turns (resumed, so the
        conversation is kept); a changed context alone goes in-session where the model takes
        clientContent with roles."""
        old_setup, old_url, old_context = self.setup_frame(None), self.url, self.cfg.context
        self._configure(cfg)
        if self.setup_frame(None) != old_setup or self.url != old_url:
            self._generation += 1
            if self.state is State.READY:
                self._plan_replacement(now, now + RENEW_WITHIN_S, start=now)
                return "session settings changed: the session will be renewed between turns"
            return "session settings changed: they apply to the next session"
        if cfg.context != old_context and self.rules.client_content_roles:
            self._context = protocol.client_content(((t.role, t.text) for t in cfg.context),
                                                    turn_complete=False)
            return "[[live.context]] changed: it is sent to the session between turns"
        return ""

    def _plan_replacement(self, now: float, deadline: float, *, start: float) -> None:
        """Replace the current connection before `deadline` (the nearest one wins)."""
        if self._deadline is not None and self._deadline <= deadline:
            return
        self._deadline, self._replace_from = deadline, start
        # Open the replacement at a pause, or anyway early enough for its setup to finish.
        self._latest_open = deadline - min(self.cfg.setup_timeout_s,
                                           max(0.0, deadline - max(now, start)) / 2)

    def poll(self, now: float) -> Step:
        """The next thing to do; call after every event, send and wake-up."""
        if self.state is not State.READY:
            return Step.NOTHING
        if self._context is not None and self.quiet:
            return Step.SEND_CONTEXT
        if self._deadline is None or now < self._replace_from:
            return Step.NOTHING
        standby = self._standby
        if standby is None:
            if (self.quiet and (self._handle_fresh or self.handle is None)) \
                    or now >= self._latest_open:
                self._standby = _Standby(False, self._turns, self.handle, self._generation)
                return Step.OPEN_STANDBY
            return Step.NOTHING
        if not standby.ready:
            return Step.NOTHING
        if (self._turns, self.handle, self._generation) != (standby.turns, standby.handle,
                                                            standby.generation):
            self._standby = None      # a turn, a newer handle or new settings came meanwhile
            return Step.DISCARD_STANDBY
        if self.quiet:
            return Step.SWITCH
        return Step.NOTHING

    def take_context(self) -> bytes | None:
        """The context update poll() announced (SEND_CONTEXT); it counts as sent."""
        frame, self._context = self._context, None
        return frame

    def wake_at(self, now: float) -> float | None:
        """When poll() may answer differently without any event or send (None: only then)."""
        if self.state is not State.READY or self._deadline is None or self._standby is not None:
            return None
        return self._replace_from if now < self._replace_from else self._latest_open

    def standby_handle(self) -> str | None:
        """The handle the standby poll() asked for resumes (None: a fresh session)."""
        return self._standby.handle if self._standby is not None else self.handle

    def standby_opened(self) -> None:
        if self._standby is not None:
            self._standby = _Standby(True, self._standby.turns, self._standby.handle,
                                     self._standby.generation)

    def standby_failed(self, exc: BaseException) -> str:
        """Opening the standby failed; returns the log line. A refused resumption is tried
        again fresh; anything else keeps the current connection until the server closes it."""
        failure = classify_error(exc)
        resumed = self._standby is not None and self._standby.handle is not None
        self._standby = None
        if resumed and failure.kind == "config":
            self.handle = None
            return (f"the replacement session could not resume the conversation "
                    f"({failure.detail}); opening a fresh one")
        self._deadline = None
        return (f"could not open the replacement session ({failure.detail}); keeping the "
                "current one until the server closes it")

    def switched(self, now: float) -> list[bytes]:
        """The standby is now the current connection; the frames to send on it first."""
        resumed = self._standby is not None and self._standby.handle is not None
        self._connection_started(now, resumed)
        return self._first_frames(resumed)
