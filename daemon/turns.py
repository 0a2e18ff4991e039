"""The press-to-talk turn machine: events in, actions out, no I/O.

States: offline (no Live session, or no microphone), idle, listening (the button is held and
audio streams), thinking (the user finished; no reply audio yet), speaking (reply audio plays).

Rules a user relies on:
- A press while idle starts a turn at once: StartStreaming (activityStart, then the pre-roll,
  then live audio), the listen-start earcon and the listening LED.
- A press while the reply plays is a barge-in: a new activity starts and playback stops, in
  that order and at once. The old reply is stale (its audio is dropped unheard) until the
  server ends it (`interrupted` or `turnComplete`) or the new turn's activityEnd is sent,
  whichever comes first; after that, audio belongs to the new turn, so a server that never
  ends the old reply cannot mute the speaker. An end that still arrives late, before anything
  of the new reply, is the old one's (the server sends in order). When the server had already
  ended the old reply (replies arrive faster than they play, so this is the usual case),
  nothing is owed.
- A turn the model answers with a function call alone has its answer: its turnComplete ends it
  quietly (the model may speak the result later, unasked).
- A turn the model ends without a reply on purpose (waitingForInput, NEED_MORE_INPUT, or
  silence where proactive audio lets it choose not to answer) ends quietly; one it ends
  without a reply for another reason fails with the error earcon and the reason. A
  turnComplete whose interactionStatus is not IDLE ends nothing: more output may follow.
- Reply audio that arrives while idle is a reply nobody asked for (the model speaks the
  result of a function it ran in the background, or proactive audio): it plays and shows as
  speaking like any reply, a press barges into it, and it ends on the server's turnComplete.
  So does audio that follows a reply the server had already ended, while that one plays out.
  Such a reply also ends by itself once a look every REPLY_QUIET_S finds no audio came since
  the last and what came has played, so a server that never ends it cannot keep the speaker
  from the next turn. An asked reply whose server stalls ends so too, looks
  ASKED_REPLY_QUIET_S apart. Audio while listening (the microphone is open) or offline is
  dropped; a reply begun while listening is one barged into (its end is owed, as above).
- A press while offline plays the error earcon and shows the error LED; nothing crashes and the
  session keeps reconnecting by itself.
- Words the user spoke are never dropped silently: a turn whose audio could not be sent, or
  whose session was lost before the reply, ends `failed: <reason>` with the error earcon.
- Every turn that started ends with exactly one TurnEnded.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from daemon.turn_actions import (
    Action,
    CancelStreaming,
    CancelTimer,
    EndReply,
    Log,
    PlayAudio,
    PlayEarcon,
    SetLed,
    StartStreaming,
    StopPlayback,
    StopStreaming,
    TurnEnded,
    UnaskedReply,
    WatchQuiet,
)
from daemon.turn_events import (
    DeviceStatus,
    Event,
    Interrupted,
    PlaybackDrained,
    Press,
    Release,
    ReplyAudio,
    ReplyText,
    SendFailed,
    SessionLost,
    SessionReady,
    Timeout,
    ToolCalled,
    TurnComplete,
)

__all__ = [
    "Action", "CancelStreaming", "CancelTimer", "DeviceStatus", "EndReply", "Event",
    "Interrupted", "Log", "PlayAudio", "PlayEarcon", "PlaybackDrained",
    "Press", "Release", "ReplyAudio", "ReplyText", "SendFailed", "SessionLost", "SessionReady",
    "SetLed", "StartStreaming", "State", "StopPlayback", "StopStreaming", "Timeout", "ToolCalled",
    "TurnComplete", "TurnEnded", "TurnMachine", "UnaskedReply", "WatchQuiet",
]

# How often a reply nobody asked for is looked at for quiet: unless the server ends it first, it
# ends at the first look that finds no audio came since the last.
REPLY_QUIET_S: Final = 2.0
# The same for an asked reply whose server stalls: longer than the model pauses for a function.
ASKED_REPLY_QUIET_S: Final = 10.0


class State(Enum):
    OFFLINE = "offline"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


class TurnMachine:
    """Decides what each press, release and server event means for the turn; pure, so the app
    only carries out the actions it returns (PlayAudio while the reply it belongs to is due).

        >>> m = TurnMachine()
        >>> m.handle(SessionReady())
        [SetLed(pattern='idle')]
        >>> m.handle(Press())
        [StartStreaming(), PlayEarcon(name='listen_start'), SetLed(pattern='listening')]
    """

    def __init__(self, *, audio_replies: bool = True, button_mode: str = "hold",
                 may_stay_silent: bool = False) -> None:
        self.audio_replies = audio_replies
        # Proactive audio is on: the model may choose not to answer, and says so by silence.
        self.may_stay_silent = may_stay_silent
        self.toggle = button_mode == "toggle"
        self.state = State.OFFLINE
        self.session_ready = False
        self.devices_online = {"microphone": True, "speaker": True}
        # A turn (press .. its reply) is open; cleared by exactly one TurnEnded.
        self.turn_open = False
        # Replies still owed by the server for turns the user barged into: their audio and
        # completion events belong to the old turn and are dropped.
        self.stale_replies = 0
        # Ends of stale replies given up on at the new turn's activityEnd: one that arrives
        # before anything of the new reply is still the old reply's.
        self.late_ends = 0
        # The server still owes the end (turnComplete) of the reply to the last activity sent.
        self.reply_pending = False
        self.got_reply = False
        # The reply playing is watched for quiet (WatchQuiet every `quiet_s`), and `heard`
        # says audio came since the watch last looked.
        self.watching = self.watch_armed = self.heard = False
        self.quiet_s: float = REPLY_QUIET_S

    @property
    def accepts_audio(self) -> bool:
        """Reply audio arriving now is played (it is not a stale reply's, and the microphone
        is not open)."""
        return (self.audio_replies and self.stale_replies == 0
                and self.state in (State.IDLE, State.THINKING, State.SPEAKING))

    @property
    def _can_listen(self) -> bool:
        return self.session_ready and self.devices_online["microphone"]

    def _rest(self) -> State:
        return State.IDLE if self._can_listen else State.OFFLINE

    def _go(self, state: State, out: list[Action]) -> None:
        self.state = state
        out.append(SetLed(state.value))

    def _end_turn(self, outcome: str, out: list[Action], *, interrupted: bool = False) -> None:
        if self.turn_open:
            self.turn_open = False
            out.append(CancelTimer())
            out.append(TurnEnded(outcome, interrupted))
        self.got_reply = False
        self.watching = self.watch_armed = self.heard = False

    def _fail(self, reason: str, out: list[Action]) -> None:
        out.append(PlayEarcon("error"))
        out.append(Log("warning", f"turn failed: {reason}"))
        self._end_turn(f"failed: {reason}", out)
        out.append(SetLed("error"))

    def _start_turn(self, out: list[Action], *, barge_in: bool = False) -> None:
        self.turn_open = True
        self.got_reply = False
        out.append(StartStreaming())
        if barge_in:
            # After activityStart, which is one non-blocking send: the playback thread's ALSA
            # drop holds the GIL for a round trip to the sound server (pyalsaaudio does not
            # release it there), which would delay press -> activityStart (tests/bench/results.md,
            # stop 18, "Barge-in"). Before the earcon, which the stop would cut.
            out.append(StopPlayback())
        out.append(PlayEarcon("listen_start"))
        self._go(State.LISTENING, out)

    def handle(self, event: Event) -> list[Action]:
        out: list[Action] = []
        match event:
            case Press():
                self._press(out)
            case Release():
                if self.state is State.LISTENING and not self.toggle:
                    self._finish_listening(out)
            case Timeout(kind="max_turn"):
                if self.state is State.LISTENING:
                    out.append(Log("info", "turn reached button.max_turn_s; sent as if released"))
                    self._finish_listening(out)
            case Timeout(kind="quiet"):
                self._quiet(out)
            case Timeout():
                if self.state is State.THINKING:
                    self._fail("no reply from the server", out)
                    self._go(self._rest(), out)
            case SessionReady():
                self.session_ready = True
                if self.state is State.OFFLINE and self._can_listen:
                    self._go(State.IDLE, out)
            case SessionLost():
                self._session_lost(out)
            case DeviceStatus():
                self._device(event, out)
            case SendFailed():
                if self.state is State.LISTENING or (self.state is State.THINKING
                                                     and not self.got_reply):
                    out.append(CancelStreaming())
                    self._fail(f"could not send the turn ({event.reason})", out)
                    self._go(self._rest(), out)
            case ReplyAudio():
                self._reply_audio(event, out)
            case ReplyText() | ToolCalled():
                if self.stale_replies == 0 and self.state is State.THINKING:
                    self.got_reply = True
                    self.late_ends = 0
            case Interrupted():
                self._server_interrupted(out)
            case TurnComplete():
                self._turn_complete(event, out)
            case PlaybackDrained():
                if self.state is State.SPEAKING:
                    self._end_turn("completed", out)
                    self._go(self._rest(), out)
        return out

    def _press(self, out: list[Action]) -> None:
        if self.state is State.LISTENING:
            if self.toggle:
                self._finish_listening(out)
            return
        if not self._can_listen:
            out.append(PlayEarcon("error"))
            what = "no Live session" if not self.session_ready else "the microphone is offline"
            out.append(Log("warning", f"press ignored: {what}; reconnecting"))
            out.append(SetLed("error"))
            return
        barge_in = self.state in (State.THINKING, State.SPEAKING)
        if barge_in:
            # Cut the reply (in _start_turn); its remaining audio is stale until the server
            # ends it.
            if self.reply_pending:
                self.stale_replies += 1
                self.reply_pending = False
            self._end_turn("interrupted", out, interrupted=True)
        self._start_turn(out, barge_in=barge_in)

    def _finish_listening(self, out: list[Action]) -> None:
        if self.stale_replies:
            out.append(Log("info", "the server had not ended the interrupted reply by the new "
                                   "turn's end; what arrives now is the new reply"))
            self.late_ends += self.stale_replies
            self.stale_replies = 0
        self.reply_pending = True
        out.append(StopStreaming())
        out.append(PlayEarcon("listen_stop"))
        self._go(State.THINKING, out)

    def _reply_audio(self, event: ReplyAudio, out: list[Action]) -> None:
        if not self.accepts_audio:
            # A stale reply's, or the microphone is open, or offline: dropped unheard.
            if self.state is State.LISTENING and not self.stale_replies and self.audio_replies:
                # A reply begun while the user speaks is one barged into: its end is owed.
                self.stale_replies += 1
                out.append(Log("info", "model audio dropped: it came while the button is held"))
            return
        if self.state is State.IDLE:
            self.turn_open = True
            out.append(UnaskedReply())
        if self.state is State.IDLE or (self.state is State.SPEAKING and not self.reply_pending):
            # Nobody asked (or the server had ended the reply): it ends on the server's
            # turnComplete again, or on quiet.
            self.reply_pending = self.watching = True
            self.quiet_s = REPLY_QUIET_S
        elif self.state is State.THINKING:  # asked: the server ends it, unless it stalls
            self.watching, self.quiet_s = True, ASKED_REPLY_QUIET_S
        out.append(PlayAudio(event.data, event.rate))
        if self.state is not State.SPEAKING:
            self._go(State.SPEAKING, out)
        if self._heard():
            self._watch(out)

    def reply_chunk_plays(self) -> bool:
        """A reply chunk in the middle of a reply, answered without building actions: True when
        all `handle(ReplyAudio)` would do is play it (its notes are taken); False when the chunk
        changes more, and `handle` must decide. Most chunks of a reply are the first kind."""
        if (self.state is State.SPEAKING and self.reply_pending and self.stale_replies == 0
                and self.audio_replies and (self.watch_armed or not self.watching)):
            self._heard()
            return True
        return False

    def _heard(self) -> bool:
        """Reply audio came; True when the reply is watched and its watch not yet armed."""
        self.got_reply, self.late_ends = True, 0
        if self.watch_armed:
            self.heard = True
        return self.watching and not self.watch_armed

    def _watch(self, out: list[Action]) -> None:
        self.watch_armed, self.heard = True, False
        out.append(WatchQuiet(self.quiet_s))

    def _quiet(self, out: list[Action]) -> None:
        """The watch looks: audio came since (look again later), or the server ended the reply
        (it ends when played), or give up on the server's end and play out what came."""
        if self.state is not State.SPEAKING or not self.watch_armed:
            return
        self.watch_armed = False
        if not self.reply_pending:
            return
        if self.heard:
            self._watch(out)
            return
        out.append(Log("info", f"the server did not end the reply; it ends "
                               f"after {self.quiet_s:g} s without audio"))
        self.reply_pending = False
        self.late_ends += 1  # the server's end, if it still comes, is this reply's
        out.append(EndReply())

    def _server_interrupted(self, out: list[Action]) -> None:
        if self.stale_replies or (self.late_ends and not self.got_reply):
            return
        if self.state in (State.THINKING, State.SPEAKING):
            out.append(StopPlayback())
            self._end_turn("interrupted", out, interrupted=True)
            self._go(self._rest(), out)
            # The turnComplete that follows belongs to this finished reply.
            self.stale_replies += 1
            self.reply_pending = False

    def _turn_complete(self, event: TurnComplete, out: list[Action]) -> None:
        if self.stale_replies:
            self.stale_replies -= 1
            return
        if self.late_ends and not self.got_reply and event.plain:
            self.late_ends -= 1
            return
        if not event.ends_interaction:
            return
        if self.late_ends and not self.reply_pending:
            self.late_ends -= 1  # nothing is owed: a reply given up on for quiet ends, late
            return
        self.reply_pending = self.watch_armed = False
        if self.state is State.SPEAKING:
            out.append(EndReply())
        elif self.state is State.THINKING:
            quiet = self._quiet_end(event)
            if self.got_reply or not self.audio_replies:
                self._end_turn("completed", out)
            elif quiet:
                out.append(Log("info", f"turn ended without a reply: {quiet}"))
                self._end_turn(f"completed: {quiet}", out)
            else:
                why = f" ({event.reason})" if event.reason else ""
                self._fail(f"the server ended the turn without a reply{why}", out)
            self._go(self._rest(), out)

    def _quiet_end(self, event: TurnComplete) -> str:
        """Why a turn without a reply is the model's choice, not a failure ("" if it is not)."""
        if event.waiting_for_input or event.reason == "NEED_MORE_INPUT":
            return "the model is waiting for more input"
        if self.may_stay_silent and event.reason is None:
            return "the model chose not to answer (proactive audio)"
        return ""

    def _session_lost(self, out: list[Action]) -> None:
        was_ready = self.session_ready
        self.session_ready = False
        self.stale_replies = 0
        self.late_ends = 0
        self.reply_pending = False
        if self.state is State.LISTENING:
            out.append(CancelStreaming())
            self._fail("the Live session was lost while listening", out)
        elif self.state is State.THINKING:
            self._fail("the Live session was lost before the reply", out)
        elif self.state is State.SPEAKING:
            # What arrived keeps playing; the reply is as complete as it will get.
            out.append(EndReply())
            self._end_turn("completed", out)
            if was_ready:
                out.append(Log("warning", "the Live session was lost during the reply"))
        if self.state is not State.OFFLINE:
            self._go(State.OFFLINE, out)

    def _device(self, event: DeviceStatus, out: list[Action]) -> None:
        self.devices_online[event.device] = event.online
        if event.device != "microphone":
            return
        if not event.online:
            if self.state is State.LISTENING:
                out.append(CancelStreaming())
                self._fail("the microphone went offline while listening", out)
            if self.state in (State.IDLE, State.LISTENING):
                self._go(State.OFFLINE, out)
        elif self.state is State.OFFLINE and self._can_listen:
            self._go(State.IDLE, out)
