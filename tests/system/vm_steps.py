"""The steps of `make system-check`, run inside the booted trixie VM by pttd-vm-check.service.

Standard library only: this runs on the VM's own Python 3.13 before pttd is installed. Each step
prints progress on the console ("pttd-vm: ...", which the host shows) and appends one JSON line
(step, result, seconds, note) to the share's results/steps.jsonl, from which the host prints the
table. The first boot ends with a reboot; the second boot checks that the service came back,
then powers the VM off::

    python3 /mnt/share/src/tests/system/vm_steps.py

The steps themselves are in vm_install.py, vm_unit.py and vm_audio.py, what they share in
vm_drive.py; this file runs them in order and records each one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from vm_audio import (
    busy,
    overrun,
    reload_volume,
    removed_and_back,
    speaker_removed_while_idle,
    turns,
)
from vm_drive import SHARE, StepFailed, ready_and_healthy, sh, turn, wait_for
from vm_install import (
    alsa_loopback,
    boot,
    configure,
    gpio_sim,
    install_again,
    install_first,
    installed_system,
    start,
)
from vm_unit import hardening, journald, socket_group, watchdog

RESULTS = SHARE / "results" / "steps.jsonl"
PHASE = Path("/var/lib/pttd-vm-check/phase")


def say(text: str) -> None:
    print(f"pttd-vm: {text}", flush=True)


def record(step: str, result: str, seconds: float, note: str) -> None:
    with RESULTS.open("a") as f:
        f.write(json.dumps({"step": step, "result": result, "seconds": round(seconds, 1),
                            "note": note}) + "\n")


def run(steps: list[tuple[str, Callable[[], str]]]) -> bool:
    """Each step in turn; after a failure the rest are recorded as not run."""
    failed = False
    for name, fn in steps:
        if failed:
            record(name, "not run", 0.0, "an earlier step failed")
            continue
        say(f"{name} ...")
        t0 = time.monotonic()
        try:
            note = fn()
            result = ("n/a" if note.startswith("n/a") else
                      "known" if note.startswith("known issue") else "pass")
        except Exception as exc:
            note, result, failed = f"{type(exc).__name__}: {exc}", "FAIL", True
        took = time.monotonic() - t0
        say(f"{name}: {result} ({took:.1f} s) {note}")
        record(name, result, took, note)
    return not failed


# ------------------------------------------------------------------ phase 1


def reboot() -> str:
    PHASE.parent.mkdir(parents=True, exist_ok=True)
    PHASE.write_text(json.dumps({"wall": time.time()}))
    return "rebooting (systemctl reboot)"


def phase1() -> None:
    ok = run([("boot (kernel, systemd PID 1)", boot),
              ("snd-aloop: kernel ALSA loopback card", alsa_loopback),
              ("gpio-sim in trixie's kernel", gpio_sim),
              ("install.sh, first run", install_first),
              ("install.sh, second run changes nothing", install_again),
              ("installed: PATH, key 0600, groups, enabled", installed_system),
              ("configure; pttd check under LoadCredential", configure),
              ("systemctl start -> READY", start),
              ("hardening of the running unit", hardening),
              ("control socket: pttd group only", socket_group),
              ("2 turns via the control socket", turns),
              ("journald: turn records, PTTD_* fields", journald),
              ("capture overrun (SIGSTOP 3 s)", overrun),
              ("card removed and back (unbind/bind)", removed_and_back),
              ("busy device (arecord holds the mic)", busy),
              ("systemctl reload applies volume", reload_volume),
              ("watchdog: SIGSTOP -> killed, restarted", watchdog),
              ("speaker card removed while idle", speaker_removed_while_idle),
              ("reboot", reboot)])
    if ok:
        sh("systemctl reboot --no-block")
    else:
        sh("systemctl poweroff --no-block")


# ------------------------------------------------------------------ phase 2


def after_reboot() -> str:
    asked = json.loads(PHASE.read_text())["wall"]
    status = wait_for("READY after the reboot", ready_and_healthy, 120)
    took = time.time() - asked
    _, heard = turn("after-reboot")
    if heard < 1000:
        raise StepFailed(f"silent turn after the reboot (level {heard:.0f})")
    return f"{status!r} {took:.0f} s after `systemctl reboot`; a turn was heard"


def main() -> None:
    if PHASE.exists():
        run([("after reboot: service back, a turn", after_reboot)])
        PHASE.unlink()
        sh("systemctl poweroff --no-block")
    else:
        phase1()


if __name__ == "__main__":
    main()
