"""The turn machine under hypothesis: random sequences of presses, releases and server events,
checking the invariants users rely on."""

from __future__ import annotations

from fixtures_turns import AUDIO, PLAY, assert_stops_playback_right_after_activity_start
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from daemon import turns as t
from daemon.turns import State, TurnMachine

EVENTS = [t.Press(), t.Release(), t.SessionReady(), t.SessionLost(), AUDIO,
          t.ReplyText(), t.TurnComplete(), t.Interrupted(),
          t.TurnComplete(waiting_for_input=True), t.TurnComplete(reason="RESPONSE_REJECTED"),
          t.TurnComplete(ends_interaction=False),
          t.PlaybackDrained(), t.Timeout("max_turn"), t.Timeout("no_reply"),
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

    def _apply(self, event: t.Event) -> list[t.Action]:
        was, due = self.m.state, self.m.accepts_audio
        acts = self.m.handle(event)
        played = [a for a in acts if isinstance(a, t.PlayAudio)]
        if isinstance(event, t.ReplyAudio) and due:
            assert played == [t.PlayAudio(event.data, event.rate)]
            assert played[0].data is event.data
        else:
            assert played == [], "audio is played only when it arrives while a reply is due"
        for a in acts:
            if isinstance(a, t.StartStreaming):
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

    @invariant()
    def audio_streams_only_inside_an_activity(self) -> None:
        assert self.streaming == (self.m.state is State.LISTENING)

    @invariant()
    def every_started_turn_ends_once(self) -> None:
        assert self.started - self.ended == (1 if self.m.turn_open else 0)

    @invariant()
    def reply_audio_plays_whenever_a_reply_is_due(self) -> None:
        """No wedge: once the user's turn is sent, nothing holds the reply's audio back."""
        due = self.m.state in (State.THINKING, State.SPEAKING)
        assert self.m.accepts_audio == due

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
