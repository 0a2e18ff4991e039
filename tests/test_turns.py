"""The turn machine: unit tests of the rules, and a hypothesis state machine over random
sequences of presses, releases and server events that checks the invariants users rely on."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from daemon import turns as t
from daemon.turns import State, TurnMachine


def ready(**kw: object) -> TurnMachine:
    m = TurnMachine(**kw)  # type: ignore[arg-type]
    m.handle(t.SessionReady())
    return m


def kinds(actions: list[t.Action]) -> list[type]:
    return [type(a) for a in actions]


def test_a_full_turn() -> None:
    m = ready()
    assert m.state is State.IDLE
    acts = m.handle(t.Press())
    assert kinds(acts)[:2] == [t.StartStreaming, t.PlayEarcon]
    assert t.SetLed("listening") in acts and m.state is State.LISTENING
    acts = m.handle(t.Release())
    assert t.StopStreaming() in acts and t.PlayEarcon("listen_stop") in acts
    assert m.state is State.THINKING and m.accepts_audio
    m.handle(t.ReplyAudio())
    assert m.state is State.SPEAKING
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    acts = m.handle(t.PlaybackDrained())
    assert t.TurnEnded("completed") in acts and m.state is State.IDLE


def assert_stops_playback_right_after_activity_start(acts: list[t.Action]) -> None:
    """Barge-in: activityStart goes out first (the stop stalls the loop for a moment), then
    the reply stops, then the earcon plays (the stop would cut it)."""
    k = kinds(acts)
    assert k.count(t.StopPlayback) == 1 and k.count(t.StartStreaming) == 1, k
    stop = k.index(t.StopPlayback)
    assert k[stop - 1] is t.StartStreaming, k
    assert all(not isinstance(a, t.PlayEarcon) for a in acts[:stop]), k
    assert k[stop + 1] is t.PlayEarcon, k


def test_barge_in_stops_playback_starts_a_new_activity_and_drops_the_old_reply() -> None:
    m = ready()
    m.handle(t.Press())
    m.handle(t.Release())
    m.handle(t.ReplyAudio())
    acts = m.handle(t.Press())
    assert_stops_playback_right_after_activity_start(acts)
    assert t.TurnEnded("interrupted", True) in acts
    assert m.state is State.LISTENING
    m.handle(t.Release())
    # The old reply's remaining audio and its end belong to the interrupted turn.
    assert not m.accepts_audio
    assert m.handle(t.Interrupted()) == []
    assert m.handle(t.TurnComplete()) == []
    assert m.accepts_audio
    m.handle(t.ReplyAudio())
    assert m.state is State.SPEAKING


def test_barge_in_after_the_server_finished_owes_nothing() -> None:
    """Replies arrive faster than they play: the server's turnComplete is usually in before the
    user barges into the tail of the playback. The next reply must then play, not be dropped
    as the old one's."""
    m = ready()
    m.handle(t.Press())
    m.handle(t.Release())
    m.handle(t.ReplyAudio())
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    acts = m.handle(t.Press())
    assert_stops_playback_right_after_activity_start(acts)
    assert t.TurnEnded("interrupted", True) in acts
    m.handle(t.Release())
    assert m.accepts_audio
    m.handle(t.ReplyAudio())
    assert m.state is State.SPEAKING
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    assert t.TurnEnded("completed") in m.handle(t.PlaybackDrained())


def test_press_while_offline_plays_the_error_earcon_and_keeps_going() -> None:
    m = TurnMachine()
    acts = m.handle(t.Press())
    assert t.PlayEarcon("error") in acts and t.SetLed("error") in acts
    assert m.state is State.OFFLINE and not any(isinstance(a, t.TurnEnded) for a in acts)
    m.handle(t.SessionReady())
    assert m.state is State.IDLE


def test_session_lost_while_listening_fails_the_turn_loudly() -> None:
    m = ready()
    m.handle(t.Press())
    acts = m.handle(t.SessionLost())
    assert t.CancelStreaming() in acts and t.PlayEarcon("error") in acts
    ended = [a for a in acts if isinstance(a, t.TurnEnded)]
    assert len(ended) == 1 and ended[0].outcome.startswith("failed: ")
    assert m.state is State.OFFLINE


def test_send_failure_and_no_reply_timeout_fail_the_turn() -> None:
    m = ready()
    m.handle(t.Press())
    acts = m.handle(t.SendFailed("activityStart: no Live session ready"))
    assert any(isinstance(a, t.TurnEnded) and "could not send" in a.outcome for a in acts)
    m.handle(t.Press())
    m.handle(t.Release())
    acts = m.handle(t.Timeout("no_reply"))
    assert any(isinstance(a, t.TurnEnded) and "no reply" in a.outcome for a in acts)
    assert m.state is State.IDLE


def test_max_turn_timeout_sends_as_if_released_and_toggle_mode() -> None:
    m = ready()
    m.handle(t.Press())
    assert t.StopStreaming() in m.handle(t.Timeout("max_turn"))
    m = ready(button_mode="toggle")
    m.handle(t.Press())
    assert m.handle(t.Release()) == []
    assert t.StopStreaming() in m.handle(t.Press())


def test_text_sessions_complete_without_audio() -> None:
    m = ready(audio_replies=False)
    m.handle(t.Press())
    m.handle(t.Release())
    assert not m.accepts_audio
    m.handle(t.ReplyText())
    acts = m.handle(t.TurnComplete())
    assert t.TurnEnded("completed") in acts and m.state is State.IDLE


def test_microphone_offline_goes_offline_and_back() -> None:
    m = ready()
    m.handle(t.DeviceStatus("microphone", False))
    assert m.state is State.OFFLINE
    assert t.PlayEarcon("error") in m.handle(t.Press())
    m.handle(t.DeviceStatus("microphone", True))
    assert m.state is State.IDLE


EVENTS = [t.Press(), t.Release(), t.SessionReady(), t.SessionLost(), t.ReplyAudio(),
          t.ReplyText(), t.GenerationComplete(), t.TurnComplete(), t.Interrupted(),
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
        was = self.m.state
        acts = self.m.handle(event)
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
            self._apply(t.ReplyAudio())
        self._apply(t.TurnComplete())
        self._apply(t.PlaybackDrained())

    # Only when the server owes no earlier reply's end (which would rightly hold the new one).
    @precondition(lambda self: self.m.state is State.IDLE and self.m.stale_replies == 0)
    @rule(server_done=st.booleans())
    def barge_into_a_reply(self, server_done: bool) -> None:
        self._apply(t.Press())
        self._apply(t.Release())
        self._apply(t.ReplyAudio())
        if server_done:
            self._apply(t.TurnComplete())
        self._apply(t.Press())
        self._apply(t.Release())
        if not server_done:
            self._apply(t.TurnComplete())           # the end of the reply barged into
        assert self.m.accepts_audio, "the new turn's reply must play"

    @invariant()
    def audio_streams_only_inside_an_activity(self) -> None:
        assert self.streaming == (self.m.state is State.LISTENING)

    @invariant()
    def every_started_turn_ends_once(self) -> None:
        assert self.started - self.ended == (1 if self.m.turn_open else 0)

    @invariant()
    def reply_audio_only_while_a_reply_is_due(self) -> None:
        if self.m.accepts_audio:
            assert self.m.state in (State.THINKING, State.SPEAKING)

    def teardown(self) -> None:
        # Whatever happened, the machine can come back to rest: the server ends its replies,
        # the playback drains, the session and the microphone come back.
        for event in (t.Release(), t.Timeout("max_turn"), t.ReplyAudio(), t.TurnComplete(),
                      t.TurnComplete(), t.TurnComplete(), t.PlaybackDrained(),
                      t.Timeout("no_reply"), t.SessionReady(), t.DeviceStatus("microphone", True),
                      t.PlaybackDrained()):
            self._apply(event)
        assert self.m.state in (State.IDLE, State.OFFLINE)


Machine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestTurnMachine = Machine.TestCase
