"""The turn machine: unit tests of the rules, and a hypothesis state machine over random
sequences of presses, releases and server events that checks the invariants users rely on."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from config.rates import OUTPUT_RATE
from daemon import turns as t
from daemon.turns import State, TurnMachine

AUDIO = t.ReplyAudio(bytes(960), OUTPUT_RATE)  # 20 ms of the reply
PLAY = t.PlayAudio(AUDIO.data, AUDIO.rate)


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
    m.handle(AUDIO)
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


def barged_in() -> TurnMachine:
    """A machine whose user has just barged into a reply the server has not ended yet."""
    m = ready()
    m.handle(t.Press())
    m.handle(t.Release())
    m.handle(AUDIO)
    acts = m.handle(t.Press())
    assert_stops_playback_right_after_activity_start(acts)
    assert t.TurnEnded("interrupted", True) in acts
    assert m.state is State.LISTENING and not m.accepts_audio
    return m


def assert_the_new_reply_plays_and_completes(m: TurnMachine) -> None:
    assert m.accepts_audio
    assert m.handle(AUDIO) == [PLAY, t.SetLed("speaking")]
    assert m.state is State.SPEAKING
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    assert t.TurnEnded("completed") in m.handle(t.PlaybackDrained())
    assert m.state is State.IDLE and m.stale_replies == 0 and m.late_ends == 0


def test_reply_audio_is_played_while_a_reply_is_due() -> None:
    """The machine decides and hands the very bytes received to the speaker: no copy."""
    m = released()
    acts = m.handle(AUDIO)
    assert acts == [PLAY, t.SetLed("speaking")]
    assert isinstance(acts[0], t.PlayAudio) and acts[0].data is AUDIO.data
    later = t.ReplyAudio(bytes(480), 16000)
    assert m.handle(later) == [t.PlayAudio(later.data, 16000)]
    assert m.handle(t.TurnComplete()) == [t.EndReply()]


def test_reply_audio_with_no_reply_due_is_dropped() -> None:
    m = ready()
    assert m.handle(AUDIO) == [] and m.state is State.IDLE
    m.handle(t.Press())
    assert m.handle(AUDIO) == [] and m.state is State.LISTENING
    m = TurnMachine(audio_replies=False)
    m.handle(t.SessionReady())
    m.handle(t.Press())
    m.handle(t.Release())
    assert m.handle(AUDIO) == [] and m.state is State.THINKING


def test_after_a_barge_in_the_old_reply_is_dropped_until_it_ends() -> None:
    m = barged_in()
    assert m.handle(AUDIO) == []               # the old reply's, arriving after the press
    assert m.handle(t.Interrupted()) == []
    assert m.handle(AUDIO) == []
    assert m.handle(t.TurnComplete()) == [] and m.stale_replies == 0
    m.handle(t.Release())
    assert_the_new_reply_plays_and_completes(m)


def test_after_a_barge_in_the_new_activity_end_lets_the_new_reply_play() -> None:
    """The server never ended the old reply: from the new activityEnd on, audio is the new
    reply's and plays."""
    m = barged_in()
    assert m.handle(AUDIO) == []
    assert t.StopStreaming() in m.handle(t.Release())
    assert_the_new_reply_plays_and_completes(m)


def test_after_the_server_interrupts_its_reply_the_rest_of_it_is_dropped() -> None:
    m = released()
    m.handle(AUDIO)
    assert t.StopPlayback() in m.handle(t.Interrupted())
    assert m.handle(AUDIO) == [] and m.state is State.IDLE
    assert m.handle(t.TurnComplete()) == []


def test_barge_in_the_server_ends_the_old_reply_before_the_release() -> None:
    m = barged_in()
    # The old reply's end belongs to the interrupted turn.
    assert m.handle(t.Interrupted()) == []
    assert m.handle(t.TurnComplete()) == []
    assert m.stale_replies == 0
    acts = m.handle(t.Release())
    assert not any(isinstance(a, t.Log) for a in acts)
    assert_the_new_reply_plays_and_completes(m)


def test_barge_in_the_server_never_ends_the_old_reply_no_wedge() -> None:
    """Preview models that send neither `interrupted` nor the old turnComplete: the new turn's
    activityEnd ends the old reply's claim, and the new reply plays."""
    m = barged_in()
    acts = m.handle(t.Release())
    assert t.StopStreaming() in acts
    assert any(isinstance(a, t.Log) and "new reply" in a.message for a in acts)
    assert m.stale_replies == 0
    assert_the_new_reply_plays_and_completes(m)


def test_barge_in_the_old_reply_ends_late_before_anything_of_the_new_one() -> None:
    """The server sends in order, so an end that crosses the activityEnd and arrives before any
    of the new reply is the old reply's: it neither fails nor ends the new turn."""
    m = barged_in()
    m.handle(t.Release())
    assert m.accepts_audio
    assert m.handle(t.Interrupted()) == []
    assert m.handle(t.TurnComplete()) == []
    assert m.state is State.THINKING and m.turn_open
    assert_the_new_reply_plays_and_completes(m)


def test_barge_in_interrupted_without_the_old_turn_complete() -> None:
    m = barged_in()
    assert m.handle(t.Interrupted()) == []
    m.handle(t.Release())
    assert_the_new_reply_plays_and_completes(m)


def test_after_the_new_reply_began_a_turn_complete_is_the_new_reply_s() -> None:
    m = barged_in()
    m.handle(t.Release())
    m.handle(AUDIO)
    assert m.late_ends == 0
    assert m.handle(t.TurnComplete()) == [t.EndReply()]


def test_a_late_old_end_does_not_swallow_a_new_turn_that_waits_for_input() -> None:
    m = barged_in()
    m.handle(t.Release())
    acts = m.handle(t.TurnComplete(waiting_for_input=True))
    assert t.TurnEnded("completed: the model is waiting for more input") in acts
    assert t.PlayEarcon("error") not in acts and m.state is State.IDLE


def test_a_second_barge_in_before_the_first_new_reply_began() -> None:
    m = barged_in()
    m.handle(t.Release())
    acts = m.handle(t.Press())                 # into the new turn, still THINKING
    assert t.TurnEnded("interrupted", True) in acts and m.stale_replies == 1
    m.handle(t.Release())
    assert m.late_ends == 2
    assert m.handle(t.TurnComplete()) == [] and m.handle(t.TurnComplete()) == []
    assert_the_new_reply_plays_and_completes(m)


def test_barge_in_after_the_server_finished_owes_nothing() -> None:
    """Replies arrive faster than they play: the server's turnComplete is usually in before the
    user barges into the tail of the playback. The next reply must then play, not be dropped
    as the old one's."""
    m = ready()
    m.handle(t.Press())
    m.handle(t.Release())
    m.handle(AUDIO)
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    acts = m.handle(t.Press())
    assert_stops_playback_right_after_activity_start(acts)
    assert t.TurnEnded("interrupted", True) in acts
    m.handle(t.Release())
    assert m.accepts_audio
    m.handle(AUDIO)
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


def released() -> TurnMachine:
    m = ready()
    m.handle(t.Press())
    m.handle(t.Release())
    return m


@pytest.mark.parametrize("event", [t.TurnComplete(waiting_for_input=True),
                                   t.TurnComplete(reason="NEED_MORE_INPUT"),
                                   t.TurnComplete(reason="NEED_MORE_INPUT",
                                                  waiting_for_input=True)])
def test_a_turn_the_model_ends_waiting_for_input_is_quiet(event: t.TurnComplete) -> None:
    m = released()
    acts = m.handle(event)
    assert t.TurnEnded("completed: the model is waiting for more input") in acts
    assert t.PlayEarcon("error") not in acts and t.SetLed("error") not in acts
    assert m.state is State.IDLE


@pytest.mark.parametrize("reason", ["RESPONSE_REJECTED", "PROHIBITED_INPUT_CONTENT",
                                    "MALFORMED_FUNCTION_CALL"])
def test_a_turn_ended_without_a_reply_for_another_reason_fails_and_says_why(reason: str) -> None:
    m = released()
    acts = m.handle(t.TurnComplete(reason=reason))
    assert t.PlayEarcon("error") in acts
    assert t.TurnEnded(f"failed: the server ended the turn without a reply ({reason})") in acts


def test_an_empty_turn_fails_unless_proactive_audio_lets_the_model_stay_silent() -> None:
    acts = released().handle(t.TurnComplete())
    assert t.PlayEarcon("error") in acts
    assert t.TurnEnded("failed: the server ended the turn without a reply") in acts
    m = ready(may_stay_silent=True)
    m.handle(t.Press())
    m.handle(t.Release())
    acts = m.handle(t.TurnComplete())
    assert t.PlayEarcon("error") not in acts
    assert t.TurnEnded("completed: the model chose not to answer (proactive audio)") in acts
    # A stated reason is still a failure, proactive or not.
    m.handle(t.Press())
    m.handle(t.Release())
    assert t.PlayEarcon("error") in m.handle(t.TurnComplete(reason="RESPONSE_REJECTED"))


def test_a_turn_complete_whose_interaction_goes_on_ends_nothing() -> None:
    """interactionStatus IN_PROGRESS: more output may follow, as the SDK's receive() reads it."""
    m = released()
    assert m.handle(t.TurnComplete(ends_interaction=False)) == []
    assert m.state is State.THINKING and m.turn_open
    m.handle(AUDIO)
    assert m.handle(t.TurnComplete(ends_interaction=False)) == []
    assert m.state is State.SPEAKING
    assert m.handle(t.TurnComplete()) == [t.EndReply()]
    assert t.TurnEnded("completed") in m.handle(t.PlaybackDrained())


def test_microphone_offline_goes_offline_and_back() -> None:
    m = ready()
    m.handle(t.DeviceStatus("microphone", False))
    assert m.state is State.OFFLINE
    assert t.PlayEarcon("error") in m.handle(t.Press())
    m.handle(t.DeviceStatus("microphone", True))
    assert m.state is State.IDLE


EVENTS = [t.Press(), t.Release(), t.SessionReady(), t.SessionLost(), AUDIO,
          t.ReplyText(), t.GenerationComplete(), t.TurnComplete(), t.Interrupted(),
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
