"""The turn machine under hypothesis: random sequences of presses, releases and server events,
checking the invariants users rely on."""

from __future__ import annotations

import copy

from fixtures_turns import AUDIO, PLAY, assert_stops_playback_right_after_activity_start
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from daemon import turns as t
from daemon.turns import State, TurnMachine

EVENTS = [t.Press(), t.Release(), t.SessionReady(), t.SessionLost(), AUDIO,
          t.ReplyText(), t.ToolCalled(), t.TurnComplete(), t.Interrupted(),
          t.TurnComplete(waiting_for_input=True), t.TurnComplete(reason="RESPONSE_REJECTED"),
          t.TurnComplete(ends_interaction=False),
          t.PlaybackDrained(), t.Timeout("max_turn"), t.Timeout("no_reply"), t.Timeout("quiet"),
          t.SendFailed("x"), t.DeviceStatus("microphone", False),
          t.DeviceStatus("microphone", True), t.DeviceStatus("speaker", False)]


class Machine(RuleBasedStateMachine):
    """Drives the machine like the app does and checks what the app would do with it."""

    def __init__(self) -> None:
        super().__init__()
        self.m = TurnMachine()
        self.streaming = False
        self.started = 0
        self.ended = 0
        # The speaker was told the reply is over (EndReply) or to stop, since its last audio.
        self.told_end = True

    def _apply(self, event: t.Event) -> list[t.Action]:
        was, due = self.m.state, self.m.accepts_audio
        acts = self.m.handle(event)
        played = [a for a in acts if isinstance(a, t.PlayAudio)]
        if isinstance(event, t.ReplyAudio) and due:
            assert played == [t.PlayAudio(event.data, event.rate)]
            assert played[0].data is event.data
        else:
            assert played == [], "audio is played only when it arrives while a reply is due"
        if played and was is State.IDLE:
            # A reply nobody asked for: its record opens before its audio plays.
            assert acts[0] == t.UnaskedReply() and acts[1] is played[0], acts
            assert self.m.state is State.SPEAKING and t.SetLed("speaking") in acts
        for a in acts:
            if isinstance(a, t.PlayAudio):
                self.told_end = False
            elif isinstance(a, t.EndReply | t.StopPlayback):
                self.told_end = True
            if isinstance(a, t.UnaskedReply):
                self.started += 1
            elif isinstance(a, t.StartStreaming):
                assert not self.streaming, "two activityStarts without an activityEnd"
                self.streaming = True
                self.started += 1
            elif isinstance(a, t.StopStreaming | t.CancelStreaming):
                self.streaming = False
            elif isinstance(a, t.TurnEnded):
                self.ended += 1
        if isinstance(event, t.Press) and was in (State.THINKING, State.SPEAKING) \
                and self.m.session_ready and self.m.devices_online["microphone"]:
            assert_stops_playback_right_after_activity_start(acts)
        return acts

    @rule(event=st.sampled_from(EVENTS))
    def event(self, event: t.Event) -> None:
        self._apply(event)

    @precondition(lambda self: self.m.state is State.IDLE)
    @rule(reply=st.booleans())
    def a_whole_turn(self, reply: bool) -> None:
        self._apply(t.Press())
        self._apply(t.Release())
        if reply:
            self._apply(AUDIO)
            assert copy.deepcopy(self.m).reply_chunk_plays(), "a reply's next chunk only plays"
        self._apply(t.TurnComplete())
        self._apply(t.PlaybackDrained())

    @precondition(lambda self: self.m.state is State.IDLE)
    @rule(old_end=st.sampled_from(["done", "before_release", "after_release", "interrupted",
                                   "never"]))
    def barge_into_a_reply(self, old_end: str) -> None:
        """However (and whether) the server ends the reply barged into, the new one plays."""
        self._apply(t.Press())
        self._apply(t.Release())
        self._apply(AUDIO)
        if old_end == "done":
            self._apply(t.TurnComplete())
        self._apply(t.Press())
        if old_end in ("before_release", "interrupted"):
            self._apply(t.Interrupted())
        if old_end == "before_release":
            self._apply(t.TurnComplete())
        self._apply(t.Release())
        if old_end == "after_release":
            self._apply(t.Interrupted())
            self._apply(t.TurnComplete())
        assert PLAY in self._apply(AUDIO), "the new turn's reply must play"
        assert self.m.state is State.SPEAKING

    @precondition(lambda self: self.m.state is State.IDLE and not self.m.stale_replies)
    @rule(chunks=st.integers(1, 3), server_ends=st.booleans())
    def a_reply_nobody_asked_for(self, chunks: int, server_ends: bool) -> None:
        """Played, then ended by the server or, if it never ends it, by quiet."""
        for _ in range(chunks):
            assert PLAY in self._apply(AUDIO)
        assert self.m.state is State.SPEAKING and self.m.turn_open
        if server_ends:
            assert self._apply(t.TurnComplete()) == [t.EndReply()]
        else:
            while t.EndReply() not in self._apply(t.Timeout("quiet")):
                assert self.m.watch_armed, "the watch gave up without ending the reply"
        assert self.m.state is State.SPEAKING
        assert t.TurnEnded("completed") in self._apply(t.PlaybackDrained())
        assert self.m.state is State.IDLE

    @invariant()
    def a_chunk_takes_the_short_way_only_when_it_only_plays(self) -> None:
        """reply_chunk_plays() is handle(ReplyAudio) for the chunks it takes: the same play,
        the same notes, nothing else."""
        short, full = copy.deepcopy(self.m), copy.deepcopy(self.m)
        acts = full.handle(AUDIO)
        if short.reply_chunk_plays():
            assert acts == [PLAY]
            assert vars(short) == vars(full)
        else:
            assert vars(short) == vars(self.m), "a chunk it does not take changes nothing"

    @invariant()
    def audio_streams_only_inside_an_activity(self) -> None:
        assert self.streaming == (self.m.state is State.LISTENING)

    @invariant()
    def every_started_turn_ends_once(self) -> None:
        assert self.started - self.ended == (1 if self.m.turn_open else 0)

    @invariant()
    def reply_audio_plays_unless_the_microphone_is_open_or_it_is_stale(self) -> None:
        """No wedge: once the user's turn is sent nothing holds the reply's audio back, and
        between turns the model is heard too; only a reply barged into (and not yet ended by
        the server) is dropped, and never while a new reply is due."""
        stale = self.m.stale_replies > 0
        assert self.m.accepts_audio == (
            self.m.state in (State.IDLE, State.THINKING, State.SPEAKING) and not stale)
        if self.m.state in (State.THINKING, State.SPEAKING):
            assert not stale

    @invariant()
    def speaking_always_ends_without_a_press(self) -> None:
        """While speaking, the server owes the reply's end or the speaker was told it is over
        (it drains); a reply nobody asked for is also watched for quiet."""
        if self.m.state is State.SPEAKING:
            assert self.m.turn_open, "a reply plays outside any turn record"
            assert self.m.reply_pending or self.told_end
            if self.m.watching and self.m.reply_pending:
                assert self.m.watch_armed

    def teardown(self) -> None:
        # Whatever happened, the machine can come back to rest: the server ends its replies,
        # the playback drains, the session and the microphone come back.
        for event in (t.Release(), t.Timeout("max_turn"), AUDIO, t.TurnComplete(),
                      t.TurnComplete(), t.TurnComplete(), t.PlaybackDrained(),
                      t.Timeout("no_reply"), t.SessionReady(), t.DeviceStatus("microphone", True),
                      t.PlaybackDrained()):
            self._apply(event)
        assert self.m.state in (State.IDLE, State.OFFLINE)


Machine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestTurnMachine = Machine.TestCase
