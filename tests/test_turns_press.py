"""The turn machine's rules for a press and a release: a whole turn, a toggle button, and the
ways a turn fails around them (offline, session lost, send failure, timeouts, no microphone)."""

from __future__ import annotations

from fixtures_turns import AUDIO, kinds, ready

from daemon import turns as t
from daemon.turns import State, TurnMachine


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


def test_microphone_offline_goes_offline_and_back() -> None:
    m = ready()
    m.handle(t.DeviceStatus("microphone", False))
    assert m.state is State.OFFLINE
    assert t.PlayEarcon("error") in m.handle(t.Press())
    m.handle(t.DeviceStatus("microphone", True))
    assert m.state is State.IDLE
