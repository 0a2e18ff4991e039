"""The system check's steps on the running unit as systemd keeps it: who may use the control
socket, its sandbox, its journal records (and no API key in them), and its watchdog::

    run([("hardening of the running unit", hardening), ("watchdog", watchdog)])
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from vm_drive import KEY, StepFailed, control, journal, ready_and_healthy, sh, show, wait_for


def socket_group() -> str:
    """Who may use the control socket: the pttd group, as the README says, and nobody else."""
    sh("id member >/dev/null 2>&1 || useradd -m -G pttd member; "
       "id stranger >/dev/null 2>&1 || useradd -m stranger")
    if control("status", "member").get("state") != "idle":
        raise StepFailed("a pttd group member cannot read the status")
    refused = sh("runuser -u stranger -- pttd status", check=False)
    if "permission denied" not in refused:
        raise StepFailed(f"a stranger got: {refused.strip()[-300:]}")
    mode = sh("stat -c '%A %U:%G' /run/pttd /run/pttd/control.sock").split("\n")
    return f"member of pttd: status ok; stranger: {refused.strip()[:90]!r}; {', '.join(mode[:2])}"


def hardening() -> str:
    pid = show("MainPID")["MainPID"]
    st = Path(f"/proc/{pid}/status").read_text()
    fields = dict(re.findall(r"^(\w+):\s*(.*)$", st, re.M))
    uid = sh("id -u pttd").strip()
    want = {"NoNewPrivs": "1", "Seccomp": "2", "CapEff": "0" * 16, "CapBnd": "0" * 16,
            "CapAmb": "0" * 16}
    bad = [f"{k}={fields.get(k)}" for k, v in want.items() if fields.get(k) != v]
    if fields["Uid"].split()[0] != uid:
        bad.append(f"Uid={fields['Uid']}")
    cwd = os.readlink(f"/proc/{pid}/cwd")
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    if cwd != "/run/pttd" or b"LG_WD=/run/pttd" not in env:
        bad.append(f"cwd={cwd}, LG_WD in environ: {b'LG_WD=/run/pttd' in env}")
    ns = f"nsenter -t {pid} -m"
    if "Read-only file system" not in sh(f"{ns} touch /usr/pttd-probe", check=False):
        bad.append("/usr writable in the unit's namespace")
    if "Read-only file system" not in sh(f"{ns} touch /etc/pttd/probe", check=False):
        bad.append("/etc writable in the unit's namespace")
    if sh(f"{ns} ls -A /root /home", check=False).strip() not in ("", "/home:\n\n/root:"):
        home = sh(f"{ns} ls -A /root /home", check=False)
        if "Permission denied" not in home:
            bad.append(f"home visible: {home!r}")
    sh(f"{ns} touch /run/pttd/probe /var/lib/pttd/probe && {ns} rm /run/pttd/probe "
       "/var/lib/pttd/probe")
    props = show("MemoryDenyWriteExecute", "ProtectSystem", "PrivateUsers", "StateDirectory")
    if props["MemoryDenyWriteExecute"] != "yes":
        bad.append(f"MemoryDenyWriteExecute={props['MemoryDenyWriteExecute']}")
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    wx = [m for m in maps if m.split()[1].startswith("rwx")]
    if wx:
        bad.append(f"W+X mappings: {wx[:3]}")
    score = re.search(r"Overall exposure level for pttd\.service: (\d+\.\d+)",
                      sh("systemd-analyze security pttd --no-pager", check=False))
    if not score or float(score.group(1)) > 1.7:
        bad.append(f"exposure {score.group(1) if score else '?'}")
    if bad:
        raise StepFailed("; ".join(bad))
    return (f"uid pttd, NoNewPrivs, seccomp, no capabilities, no W+X mapping (ctypes callback "
            f"live under MDWE), / and /etc read-only, /run/pttd + /var/lib/pttd writable, "
            f"cwd /run/pttd, exposure {score.group(1)} (live)")


def journald() -> str:
    records = [e for e in journal("-u", "pttd") if "PTTD_TURN" in e]
    if len(records) < 2:
        raise StepFailed(f"{len(records)} turn records in the journal")
    last = records[-1]
    for field in ("PTTD_OUTCOME", "PTTD_AUDIO_SENT_S", "PTTD_REPLY_S", "PTTD_UNDERRUNS",
                  "PTTD_OVERRUNS", "PTTD_RELEASE_TO_REPLY_MS"):
        if field not in last:
            raise StepFailed(f"turn record lacks {field}: {sorted(last)}")
    if float(str(last["PTTD_AUDIO_SENT_S"])) < 1.0 or float(str(last["PTTD_REPLY_S"])) <= 0:
        raise StepFailed(f"turn record: sent {last['PTTD_AUDIO_SENT_S']} s, "
                         f"reply {last['PTTD_REPLY_S']} s")
    leaks = _key_in_journal()
    if leaks:
        raise StepFailed(f"the API key is in the journal: {leaks[:5]}")
    return (f"{len(records)} records; last: {last['MESSAGE']!s}; outcome {last['PTTD_OUTCOME']}; "
            f"key absent from every field of every entry (bar the emulator's own command line)")


def _key_in_journal() -> list[str]:
    """Where the key shows in the whole journal, as unit:field.

    The emulator's command line carries the key it requires, and journald stores a process's
    command line (_CMDLINE) with each of its entries: that is this check's scaffolding, not pttd.
    """
    found = []
    for entry in journal():
        for name, value in entry.items():
            text = bytes(value).decode(errors="replace") if isinstance(value, list) else str(value)
            if KEY in text and not (name == "_CMDLINE" and
                                    entry.get("_SYSTEMD_UNIT") == "pttd-emulator.service"):
                found.append(f"{entry.get('_SYSTEMD_UNIT', entry.get('SYSLOG_IDENTIFIER'))}:{name}")
    return sorted(set(found))


def watchdog() -> str:
    p = show("MainPID", "NRestarts", "WatchdogUSec")
    pid = int(p["MainPID"])
    t0 = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    wait_for("a new main process", lambda: show("MainPID")["MainPID"] not in (str(pid), "0"), 120)
    took = time.monotonic() - t0
    after = show("NRestarts")["NRestarts"]
    killed = [e["MESSAGE"] for e in journal("-u", "pttd", "-n", "60")
              if "atchdog" in str(e.get("MESSAGE"))]
    if int(after) != int(p["NRestarts"]) + 1 or not killed:
        raise StepFailed(f"NRestarts {p['NRestarts']} -> {after}; journal: {killed}")
    wait_for("READY after the restart", ready_and_healthy, 90)
    return (f"WatchdogUSec={p['WatchdogUSec']}; stopped -> restarted in {took:.0f} s; "
            f"NRestarts {p['NRestarts']} -> {after}; {killed[0]!s}")
