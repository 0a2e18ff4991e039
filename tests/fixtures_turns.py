"""Helpers for the turn machine's tests: a reply's audio, a machine that is ready or has just
sent its turn, and the order of actions a barge-in must produce."""

from __future__ import annotations

from config.rates import OUTPUT_RATE
from daemon import turns as t
from daemon.turns import TurnMachine

AUDIO = t.ReplyAudio(bytes(960), OUTPUT_RATE)  # 20 ms of the reply
PLAY = t.PlayAudio(AUDIO.data, AUDIO.rate)
# The first audio of an asked reply: it plays, and is watched in case the server stalls.
SPEAKS = [PLAY, t.SetLed("speaking"), t.WatchQuiet(t.ASKED_REPLY_QUIET_S)]


def ready(**kw: object) -> TurnMachine:
    m = TurnMachine(**kw)  # type: ignore[arg-type]
    m.handle(t.SessionReady())
    return m


def kinds(actions: list[t.Action]) -> list[type]:
    return [type(a) for a in actions]


def released() -> TurnMachine:
    m = ready()
    m.handle(t.Press())
    m.handle(t.Release())
    return m


def assert_stops_playback_right_after_activity_start(acts: list[t.Action]) -> None:
    """Barge-in: activityStart goes out first (the stop stalls the loop for a moment), then
    the reply stops, then the earcon plays (the stop would cut it)."""
    k = kinds(acts)
    assert k.count(t.StopPlayback) == 1 and k.count(t.StartStreaming) == 1, k
    stop = k.index(t.StopPlayback)
    assert k[stop - 1] is t.StartStreaming, k
    assert all(not isinstance(a, t.PlayEarcon) for a in acts[:stop]), k
    assert k[stop + 1] is t.PlayEarcon, k
