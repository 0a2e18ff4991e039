"""The fault matrix, through `pttd run` with the emulator, real ALSA PCMs on a PulseAudio null
sink and the control socket. For every fault: the daemon keeps running, says so in one clear
line (no traceback), recovers by itself, and the next press works. Recovery times are printed
at the end of the module (pytest -s)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_daemon import DaemonRig

from daemon.devkit.emulator import EmulatorOptions, EmulatorThread
from daemon.devkit.simsink import SimSink

FAST = ("[live]\n", "[live]\nkeepalive_interval_s = 1.0\nkeepalive_timeout_s = 2.0\n")
RECOVERY: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def recovery_table() -> Iterator[None]:
    yield
    if RECOVERY:
        print("\n\nfault                          back to idle after (incl. the turn in flight)")
        for fault, seconds in RECOVERY.items():
            print(f"{fault:30} {seconds * 1000:8.0f} ms")


@pytest.fixture
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(EmulatorOptions(pace="burst")) as e:
        yield e


def rig(tmp_path: Path, sink: SimSink, emu: EmulatorThread | None, **kw: object) -> DaemonRig:
    d = DaemonRig(tmp_path, sink, emu, **kw)  # type: ignore[arg-type]
    d.config_path.write_text(d.config_path.read_text().replace(*FAST))
    return d


def completed(d: DaemonRig) -> int:
    return int(d.status().get("outcomes", {}).get("completed", 0))


def press_works(d: DaemonRig, hold: float = 0.5) -> None:
    """A whole turn: press, speak, release, and a reply that completes."""
    before = completed(d)
    d.wait_state("idle", timeout=20)
    assert d.control("press")["state"] == "listening"
    time.sleep(hold)
    d.control("release")
    d.wait(lambda: completed(d) > before, 20, "the next turn to complete")


def recovered(d: DaemonRig, fault: str, since: float) -> None:
    d.wait_state("idle", timeout=20)
    RECOVERY[fault] = time.monotonic() - since


def clean(d: DaemonRig, *needles: str) -> None:
    """The daemon is alive, logged the fault once in words, and no traceback anywhere."""
    assert d.proc is not None and d.proc.poll() is None, d.stderr
    assert "Traceback" not in d.stderr, d.stderr[-3000:]
    for needle in needles:
        assert needle.lower() in d.stderr.lower(), f"no log line about {needle!r}:\n{d.stderr}"


@pytest.mark.parametrize(("code", "reason"), [
    (1011, "Internal error occurred."),
    (1007, "Request contains an invalid argument."),
    (1008, "Operation is not implemented, or supported, or enabled."),
])
def test_server_close_codes(tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread,
                            code: int, reason: str) -> None:
    with rig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        t0 = time.monotonic()
        emu.inject("close", code=code, reason=reason)
        d.wait(lambda: d.status().get("reconnects", 0) >= 1, 20, "a reconnect")
        recovered(d, f"close {code}", t0)
        press_works(d)
        clean(d, str(code))
        assert d.stop()[0] == 0


def test_close_1011_mid_reply_ends_that_turn_and_the_next_works(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread) -> None:
    with rig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        emu.inject("close", code=1011, mid_reply=True)
        d.control("press")
        time.sleep(0.8)
        t0 = time.monotonic()
        d.control("release")
        d.wait(lambda: sum(d.status().get("outcomes", {}).values()) == 1, 20, "turn 1 to end")
        recovered(d, "close 1011 mid-reply", t0)
        press_works(d)
        clean(d, "1011")
        assert d.stop()[0] == 0


def test_429_at_the_upgrade_backs_off_then_recovers(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread) -> None:
    with rig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        emu.inject("reject", status=429, count=1)
        t0 = time.monotonic()
        emu.inject("close", code=1011)
        d.wait_state("offline", timeout=10)
        press = d.control("press")
        assert press["state"] == "offline"       # error earcon, nothing crashes
        recovered(d, "HTTP 429 at upgrade", t0)
        press_works(d)
        clean(d, "429")
        assert d.stop()[0] == 0


@pytest.mark.parametrize("status", [401, 403])
def test_key_rejected_at_the_upgrade_says_so_once_and_does_not_hammer(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread, status: int) -> None:
    with rig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        emu.inject("reject", status=status, count=100)
        emu.inject("close", code=1011)
        d.wait_state("offline", timeout=10)
        time.sleep(3)
        attempts = emu.call(lambda e: len(e.sessions))
        assert attempts <= 2                      # one refused upgrade, then minutes of back-off
        assert d.control("press")["state"] == "offline"
        clean(d, f"rejected the API key from $GEMINI_API_KEY (HTTP {status}")
        assert d.stderr.count(f"HTTP {status}") == 1
        retry = d.stderr.split(f"HTTP {status}", 1)[1].split("retrying in ", 1)[1]
        assert retry.startswith("1 min") or retry.startswith("2 min")
        assert d.stop()[0] == 0


@pytest.mark.parametrize("when", ["idle", "speaking", "reply"])
def test_go_away_switches_sessions_without_losing_a_turn(
        tmp_path: Path, counter_sink: SimSink, when: str) -> None:
    with EmulatorThread(EmulatorOptions(pace="realtime")) as emu, \
            rig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        t0 = time.monotonic()
        if when == "idle":
            emu.inject("go_away", time_left_s=1.0)
            d.wait(lambda: emu.call(lambda e: len(e.sessions)) >= 2, 15, "the new session")
            press_works(d)
        else:
            d.control("press")
            time.sleep(0.6)
            if when == "speaking":
                emu.inject("go_away", time_left_s=3.0)
                time.sleep(0.4)
            d.control("release")
            if when == "reply":
                d.wait_state("speaking", timeout=10)
                emu.inject("go_away", time_left_s=3.0)
            d.wait(lambda: completed(d) == 1, 20, "the turn around the goAway to complete")
            d.wait(lambda: emu.call(lambda e: len(e.sessions)) >= 2, 15, "the new session")
            press_works(d)
        recovered(d, f"goAway while {when}", t0)
        assert d.status()["outcomes"].get("failed", 0) == 0
        clean(d)
        assert d.stop()[0] == 0


def test_stall_is_detected_by_keepalive_and_the_session_replaced(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread) -> None:
    with rig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        t0 = time.monotonic()
        emu.inject("stall", seconds=60)
        d.wait(lambda: emu.call(lambda e: len(e.sessions)) >= 2, 20, "a replacement session")
        recovered(d, "stall (60 s, keepalive 1+2 s)", t0)
        press_works(d)
        clean(d)
        assert d.stop()[0] == 0


@pytest.mark.parametrize(("fault", "kw", "needle"), [
    ("malformed", {}, "malformed"),
    ("unknown_only", {}, "unknown"),
    ("bad_base64", {}, "base64"),
    ("odd_pcm", {}, ""),
    ("rate", {"rate": 16000}, "16000 hz"),
])
def test_bad_server_frames_are_logged_and_survived(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread, fault: str,
        kw: dict[str, int], needle: str) -> None:
    with rig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        t0 = time.monotonic()
        emu.inject(fault, **kw)
        press_works(d)
        recovered(d, fault, t0)
        press_works(d)
        clean(d, *([needle] if needle else []))
        assert d.stop()[0] == 0


def test_an_oversize_audio_frame_while_idle_plays_and_a_press_barges_into_it(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread) -> None:
    """A valid audio frame over 1 MiB (31 s of audio) with no turnComplete is survived and,
    since model audio while idle is a reply nobody asked for, plays: a press cuts it like any
    reply, and the turns after it work."""
    with rig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        t0 = time.monotonic()
        emu.inject("oversize")
        d.wait_state("speaking", timeout=10)
        assert d.control("press")["state"] == "listening"
        time.sleep(0.5)
        d.control("release")
        d.wait(lambda: completed(d) == 1, 20, "the turn that barged in to complete")
        assert d.status()["outcomes"] == {"interrupted": 1, "completed": 1}
        recovered(d, "oversize frame, barged into", t0)
        press_works(d)
        assert d.status()["outcomes"] == {"interrupted": 1, "completed": 2}
        clean(d, "turn 1 (unasked) interrupted")
        assert d.stop()[0] == 0


def test_capture_device_vanishing_and_returning(tmp_path: Path, emu: EmulatorThread) -> None:
    with SimSink(tmp_path) as sink, rig(tmp_path, sink, emu) as d:
        d.wait_ready()
        sink.stop_server()
        d.wait_state("offline", timeout=15)
        assert d.control("press")["state"] == "offline"
        t0 = time.monotonic()
        sink.start_server()
        recovered(d, "sound server gone and back", t0)
        press_works(d)
        clean(d, "microphone offline", "microphone online")
        assert d.stop()[0] == 0


def test_playback_device_unusable_keeps_the_daemon_listening(
        tmp_path: Path, counter_sink: SimSink, emu: EmulatorThread) -> None:
    """No machine here has a device another process can hold busy (no kernel ALSA), so the
    speaker is one that cannot be opened at all: the same path (open fails, retried with
    back-off) as a busy one."""
    d = rig(tmp_path, counter_sink, emu)
    d.config_path.write_text(d.config_path.read_text().replace(
        f'playback_device = "{counter_sink.playback_device}"', 'playback_device = "hw:9,0"'))
    with d:
        d.wait(lambda: "speaker offline" in d.stderr, 15, "the speaker problem")
        st = d.wait_state("idle", timeout=20)
        assert st["playback"]["online"] is False
        press_works(d)
        clean(d, "speaker offline")
        assert d.stderr.count("speaker offline") == 1   # retried quietly, said once
        assert d.stop()[0] == 0


def test_a_missing_model_is_named_in_status_and_in_systemd_status(
        tmp_path: Path, counter_sink: SimSink) -> None:
    """Close 1008 "... is not found ...": not hot-looped, and `pttd status` and STATUS= say
    which key to fix."""
    named = '[live] model = "models/gemini-retired" is not found'
    with EmulatorThread(EmulatorOptions(pace="burst", known_models=("models/gemini-ok",))) as emu:
        d = DaemonRig(tmp_path, counter_sink, emu)
        d.config_path.write_text(d.config_path.read_text().replace(
            "[live]\n", '[live]\nmodel = "models/gemini-retired"\n'))
        with d:
            d.wait(lambda: named in d.status().get("problem", ""), 20, "the problem in status")
            d.wait(lambda: any(named in n and "STATUS=" in n for _, n in d.notifications), 20,
                   "the problem in STATUS=")
            time.sleep(2)
            assert emu.call(lambda e: len(e.sessions)) == 1   # a minute of back-off, no loop
            clean(d, named)
            assert d.stop()[0] == 0
