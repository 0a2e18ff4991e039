"""The system check's audio steps: turns heard on the speaker card, and the daemon living
through what real ALSA devices do (an overrun, a card unplugged and back, a device held by
another program, a volume reload, the speaker gone while idle)::

    run([("2 turns via the control socket", turns), ("busy device", busy)])
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from vm_drive import CONF, StepFailed, control, journal, ready_and_healthy, sh, show, turn, wait_for

BASELINE: dict[str, float] = {}


def turns() -> str:
    notes = []
    for i in (1, 2):
        status, heard = turn(f"t{i}")
        outcome = status["outcomes"]
        if heard < 1000:
            raise StepFailed(f"turn {i}: the speaker stayed silent (level {heard:.0f})")
        notes.append(f"turn {i}: reply level {heard:.0f}")
        BASELINE["level"] = heard
    return "; ".join(notes) + f"; outcomes {outcome}"


def overrun() -> str:
    before = control("status")["capture"]["overruns"]  # type: ignore[index]
    pid = int(show("MainPID")["MainPID"])
    os.kill(pid, signal.SIGSTOP)
    time.sleep(3)
    os.kill(pid, signal.SIGCONT)
    after = wait_for("an overrun counted", lambda: (
        o if (o := control("status")["capture"]["overruns"]) > before else 0), 20)  # type: ignore[index,operator]
    wait_for("healthy again", ready_and_healthy, 30)
    _, heard = turn("after-overrun")
    if heard < 1000:
        raise StepFailed(f"silent turn after the overrun (level {heard:.0f})")
    return f"overruns {before} -> {after} (EPIPE from the kernel), next turn heard"


def removed_and_back() -> str:
    """The microphone's card goes away under the running daemon (as a USB card does), returns."""
    driver, device = _aloop_device("Loopback")
    # The kernel finishes an unbind only once every open file of the card is closed.
    unbind = subprocess.Popen(["bash", "-c", f"echo {device} > {driver}/unbind"])
    gone = wait_for("the daemon to notice", lambda: (
        s if "microphone offline" in (s := show("StatusText")["StatusText"]) else ""), 30)
    try:
        unbind.wait(60)
    except subprocess.TimeoutExpired:
        pid = show("MainPID")["MainPID"]
        fds = sh(f"ls -l /proc/{pid}/fd | grep /dev/snd", check=False).strip()
        raise StepFailed(f"unbind still blocked after 60 s: the daemon keeps the gone card "
                         f"open: {fds}; status {gone!r}") from None
    (driver / "bind").write_text(device)
    back = wait_for("the daemon to recover", ready_and_healthy, 90)
    _, heard = turn("after-removal")
    if heard < 1000:
        raise StepFailed(f"silent turn after the card returned (level {heard:.0f})")
    return f"unbound {device}: {gone!r}; bound again: {back!r}; next turn heard"


def _aloop_device(card_id: str) -> tuple[Path, str]:
    driver = Path("/sys/bus/platform/drivers/snd_aloop")
    for p in driver.iterdir():
        if p.name.startswith("snd_aloop.") and any(
                (c / "id").read_text().strip() == card_id for c in (p / "sound").glob("card*")):
            return driver, p.name
    raise StepFailed(f"no snd_aloop device holds card {card_id}")


def busy() -> str:
    sh("systemctl stop pttd")
    holder = subprocess.Popen(["arecord", "-q", "-D", "hw:Loopback,0,0", "-f", "S16_LE",
                               "-r", "16000", "-c", "1", "-t", "raw", "/dev/null"])
    try:
        time.sleep(1)
        check = sh("pttd check", check=False)
        if "held by" not in check or "arecord" not in check:
            raise StepFailed(f"pttd check does not name the holder: {check[-800:]}")
        sh("systemctl start pttd", timeout=120)
        degraded = wait_for("a degraded status", lambda: (
            s if "microphone offline" in (s := show("StatusText")["StatusText"]) else ""), 60)
        logged = [e["MESSAGE"] for e in journal("-u", "pttd", "-n", "50")
                  if "busy" in str(e.get("MESSAGE", ""))]
    finally:
        holder.terminate()
        holder.wait(10)
    back = wait_for("recovered once released", ready_and_healthy, 90)
    chatter = [e["MESSAGE"] for e in journal("-u", "pttd") if "ALSA lib" in str(e.get("MESSAGE"))]
    if chatter:
        raise StepFailed(f"libasound printed past our handler: {chatter[:2]}")
    return (f"pttd check names it: {check.strip().splitlines()[-1][:120]!r}; service: "
            f"{degraded!r}; journal: {logged[-1][-120:] if logged else 'no busy line'!r}; "
            f"released: {back!r}")


def reload_volume() -> str:
    text = CONF.read_text()
    CONF.write_text(re.sub(r"^volume = 1\.0$", "volume = 0.25", text, count=1, flags=re.M))
    since = time.time()
    sh("systemctl reload pttd")
    wait_for("the reload logged", lambda: [
        e for e in journal("-u", "pttd", f"--since=@{int(since) - 1}")
        if "config reloaded" in str(e.get("MESSAGE"))], 20)
    _, heard = turn("quiet")
    ratio = heard / BASELINE["level"]
    if not 0.2 <= ratio <= 0.3:
        raise StepFailed(f"reply level {heard:.0f} vs {BASELINE['level']:.0f} at volume 1.0: "
                         f"ratio {ratio:.2f}, want 0.25")
    return (f"volume 0.25 by reload: reply level {heard:.0f} vs {BASELINE['level']:.0f} "
            f"({ratio:.2f})")


def speaker_removed_while_idle() -> str:
    """The speaker's card goes away while nothing plays: the idle playback thread must notice
    (it looks at the PCM's state every 2 s), let the card go so the kernel's unbind completes,
    say so in STATUS=, and play again once the card is back."""
    driver, device = _aloop_device("Speaker")
    unbind = subprocess.Popen(["bash", "-c", f"echo {device} > {driver}/unbind"])
    took = time.monotonic()
    try:
        unbind.wait(20)
    except subprocess.TimeoutExpired:
        pid = show("MainPID")["MainPID"]
        fds = len(sh(f"ls -l /proc/{pid}/fd | grep /dev/snd", check=False).splitlines())
        raise StepFailed(f"the unbind blocked 20 s while idle: the daemon holds the gone speaker "
                         f"card ({fds} /dev/snd fds)") from None
    took = time.monotonic() - took
    def offline() -> str:
        text = show("StatusText")["StatusText"]
        return text if "speaker offline" in text else ""

    status = wait_for("STATUS= to name the lost speaker", offline, 30)
    (driver / "bind").write_text(device)
    wait_for("the daemon to recover", ready_and_healthy, 90)
    _, heard = turn("after-speaker")
    if heard < 1000:
        raise StepFailed(f"silent turn after the speaker card returned (level {heard:.0f})")
    return (f"unbind done in {took:.1f} s while idle; status {status!r}; after bind: healthy, "
            "next turn heard")
