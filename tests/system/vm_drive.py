"""How the system check's steps reach the VM: a shell, systemd's view of pttd.service, the
journal, pttd's control socket, and a whole spoken turn through the snd-aloop cards.

Standard library only, like every vm_*.py: it runs on the VM's own Python before pttd is
installed. A step raises StepFailed with the evidence when its check does not hold::

    status = wait_for("READY and healthy", ready_and_healthy, 60)
"""

from __future__ import annotations

import array
import json
import math
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

SHARE = Path("/mnt/share")
CLONE = Path("/root/pttd")
KEY = "AIzaSySYSTEMCHECKvmKEY0123456789abcdef"
CONF = Path("/etc/pttd/pttd.toml")
MIC = "plughw:Loopback,1,0"  # what we play here, the daemon captures on hw:Loopback,0,0
EAR = "plughw:Speaker,1,0"  # what the daemon plays on hw:Speaker,0,0, we record here
TONE_HZ = 440
MIC_S = 1.5


class StepFailed(Exception):
    """A step's check did not hold; the message is the evidence."""


def sh(cmd: str, *, check: bool = True, timeout: float = 900) -> str:
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise StepFailed(f"`{cmd}` exited {proc.returncode}: {out.strip()[-1500:]}")
    return out


def wait_for(what: str, pred: Callable[[], object], timeout: float, every: float = 0.5) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StepFailed(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def show(*props: str) -> dict[str, str]:
    out = sh(f"systemctl show pttd -p {','.join(props)}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def control(command: str, user: str = "root") -> dict[str, object]:
    """The control socket through the user's own command, `pttd press|release|status`."""
    out = sh(f"runuser -u {user} -- pttd {command}", check=False)
    try:
        return json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise StepFailed(f"pttd {command} as {user}: {out.strip()[-300:]}") from None


def ready_and_healthy() -> str:
    """The service is active and says it is idle with a live session and both devices."""
    p = show("ActiveState", "StatusText")
    if p["ActiveState"] == "active" and p["StatusText"].startswith("idle, session ready"):
        return p["StatusText"]
    return ""


def journal(*args: str) -> list[dict[str, object]]:
    out = sh(f"journalctl -o json --no-pager {' '.join(args)}")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def tone(path: Path) -> None:
    """A steady tone as the microphone: its level does not depend on where a turn cuts it."""
    n = int(16000 * MIC_S)
    samples = array.array("h", (int(8000 * math.sin(2 * math.pi * TONE_HZ * i / 16000))
                                for i in range(n)))
    path.write_bytes(samples.tobytes())


def level(raw: bytes) -> float:
    """The 99th percentile of |sample|: the reply's level, whatever silence surrounds it."""
    samples = sorted(abs(v) for v in array.array("h", raw[: len(raw) // 2 * 2]))
    return float(samples[int(len(samples) * 0.99)]) if samples else 0.0


def turn(label: str) -> tuple[dict[str, object], float]:
    """Press, speak into the loopback mic, release, and record what the speaker played."""
    before = control("status")
    heard = Path(f"/root/heard-{label}.raw")
    ear = subprocess.Popen(["arecord", "-q", "-D", EAR, "-f", "S16_LE", "-r", "24000", "-c", "1",
                            "-t", "raw", str(heard)])
    try:
        time.sleep(0.5)
        if not control("press").get("ok"):
            raise StepFailed("press refused")
        sh(f"aplay -q -D {MIC} -f S16_LE -r 16000 -c 1 -t raw /root/mic.raw")
        control("release")
        wait_for(f"turn {label} to end", lambda: (
            (s := control("status"))["turn"] > before["turn"] and s["state"] == "idle"
            and not s["playback"]["playing"]), 60)  # type: ignore[index,operator]
        time.sleep(0.5)
    finally:
        ear.send_signal(signal.SIGINT)
        ear.wait(10)
    after = control("status")
    return after, level(heard.read_bytes())
