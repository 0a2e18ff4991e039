"""The steps of `make system-check`, run inside the booted trixie VM by pttd-vm-check.service.

Standard library only: this runs on the VM's own Python 3.13 before pttd is installed. Each step
prints progress on the console ("pttd-vm: ...", which the host shows) and appends one JSON line
(step, result, seconds, note) to the share's results/steps.jsonl, from which the host prints the
table. The first boot ends with a reboot; the second boot checks that the service came back,
then powers the VM off::

    python3 /mnt/share/src/tests/system/vm_steps.py
"""

from __future__ import annotations

import array
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SHARE = Path("/mnt/share")
RESULTS = SHARE / "results" / "steps.jsonl"
PHASE = Path("/var/lib/pttd-vm-check/phase")
CLONE = Path("/root/pttd")
KEY = "AIzaSySYSTEMCHECKvmKEY0123456789abcdef"
CONF = Path("/etc/pttd/pttd.toml")
MIC = "plughw:Loopback,1,0"  # what we play here, the daemon captures on hw:Loopback,0,0
EAR = "plughw:Speaker,1,0"  # what the daemon plays on hw:Speaker,0,0, we record here
TONE_HZ = 440
MIC_S = 1.5


class StepFailed(Exception):
    """A step's check did not hold; the message is the evidence."""


def say(text: str) -> None:
    print(f"pttd-vm: {text}", flush=True)


def sh(cmd: str, *, check: bool = True, timeout: float = 900) -> str:
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise StepFailed(f"`{cmd}` exited {proc.returncode}: {out.strip()[-1500:]}")
    return out


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


# ------------------------------------------------------------------ phase 1


def boot() -> str:
    up = float(Path("/proc/uptime").read_text().split()[0])
    kernel = os.uname().release
    systemd = sh("systemctl --version").splitlines()[0]
    py = sys.version.split()[0]
    os_name = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text())
    return (f"{os_name.group(1) if os_name else '?'}; kernel {kernel}; {systemd}; "
            f"Python {py}; check unit started {up:.0f} s after the kernel")


def alsa_loopback() -> str:
    cards = Path("/proc/asound/cards").read_text()
    if "Loopback" not in cards or "Speaker" not in cards:
        raise StepFailed(f"snd-aloop not loaded as cards Loopback and Speaker: {cards!r}")
    pcms = sorted(p.name for p in Path("/dev/snd").glob("pcmC*"))
    return f"kernel ALSA cards Loopback (mic), Speaker; {' '.join(pcms)}"


def gpio_sim() -> str:
    config = next(Path("/boot").glob("config-*")).read_text()
    line = re.search(r"^(# )?CONFIG_GPIO_SIM\b.*$", config, re.M)
    if line and not line.group(0).startswith("#"):
        return f"{line.group(0)}: available but not used by this check"
    chips = sorted(p.name for p in Path("/dev").glob("gpiochip*"))
    return (f"n/a: trixie's kernel has '{line.group(0) if line else 'no CONFIG_GPIO_SIM'}'; "
            f"gpiochips: {chips or 'none'}; the button uses gpiozero's mock pins")


def _snapshot() -> dict[str, tuple[int, int, str]]:
    roots = [Path("/etc/pttd"), Path("/opt/pttd"), Path("/etc/systemd/system"),
             Path("/usr/local/bin")]
    files = [Path("/etc/passwd"), Path("/etc/group")]
    for root in roots:
        files += [p for p in root.rglob("*") if "__pycache__" not in p.parts]
    snap = {}
    for p in files:
        st = p.lstat()
        snap[str(p)] = (st.st_mtime_ns, st.st_mode, os.readlink(p) if p.is_symlink() else "")
    return snap


def install_first() -> str:
    shutil.rmtree(CLONE, ignore_errors=True)
    shutil.copytree(SHARE / "src", CLONE, symlinks=True)
    key = Path("/root/api_key.txt")
    key.write_text(KEY + "\n")
    out = sh(f"cd {CLONE} && ./install.sh --api-key-file {key} < /dev/null", timeout=1800)
    Path("/root/install1.log").write_text(out)
    for want in ("installing Debian packages", "created system user pttd", "pttd is installed",
                 "enabled pttd.service", "pttd check: everything looks right"):
        if want not in out:
            raise StepFailed(f"install.sh output lacks {want!r}: {out[-1500:]}")
    if KEY in out:
        raise StepFailed("install.sh printed the API key")
    return "apt, user, venv, config, key, unit; pttd check: everything looks right"


def install_again() -> str:
    before = _snapshot()
    out = sh(f"cd {CLONE} && ./install.sh --api-key-file /root/api_key.txt < /dev/null")
    after = _snapshot()
    if "nothing to change" not in out:
        raise StepFailed(f"second run changed something: {out[-1500:]}")
    diff = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if diff:
        raise StepFailed(f"second run touched {diff[:10]}")
    return f"'nothing to change'; {len(before)} files unchanged"


def installed_system() -> str:
    which = shutil.which("pttd")
    if which != "/usr/local/bin/pttd":
        raise StepFailed(f"pttd on PATH is {which}")
    key = sh("stat -c '%a %U:%G' /etc/pttd/api_key").strip()
    if key != "600 root:root":
        raise StepFailed(f"/etc/pttd/api_key is {key}")
    groups = sh("id -nG pttd").split()
    if not {"audio", "gpio"} <= set(groups):
        raise StepFailed(f"pttd is in {groups}")
    enabled = sh("systemctl is-enabled pttd", check=False).strip()
    if enabled != "enabled":
        raise StepFailed(f"pttd.service is {enabled}")
    return f"pttd -> {which}; key {key}; groups {' '.join(groups)}; unit {enabled}"


def configure() -> str:
    """What a user does next: devices, the endpoint (our emulator), and pins for a non-Pi."""
    text = CONF.read_text()
    for key, value in (("endpoint", '"ws://127.0.0.1:8765"'),
                       ("capture_device", '"hw:Loopback,0,0"'),
                       ("playback_device", '"hw:Speaker,0,0"'), ("reconnect_max_s", "2.0")):
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        if n != 1:
            raise StepFailed(f"{CONF} has {n} '{key} =' lines")
    text = re.sub(r"(\[earcons\]\n(?:#.*\n)*)enabled = true", r"\1enabled = false", text)
    CONF.write_text(text)
    dropin = Path("/etc/systemd/system/pttd.service.d/vm.conf")
    dropin.parent.mkdir(exist_ok=True)
    dropin.write_text("[Service]\n# No GPIO chip in this VM (no gpio-sim in trixie's kernel).\n"
                      "Environment=GPIOZERO_PIN_FACTORY=mock GPIOZERO_MOCK_PIN_CLASS=mockpwmpin\n")
    Path("/etc/systemd/system/pttd-emulator.service").write_text(
        "[Unit]\nDescription=Live API emulator for the system check\nBefore=pttd.service\n"
        "[Service]\nDynamicUser=yes\n"
        f"ExecStart=/opt/pttd/venv/bin/pttd emulator --port 8765 --api-key {KEY}\n"
        "[Install]\nWantedBy=multi-user.target\n")
    sh("systemctl daemon-reload && systemctl enable --now pttd-emulator.service")
    tone(Path("/root/mic.raw"))
    # The trap of issue 21: the credential as systemd hands it to User=pttd.
    out = sh("systemd-run --quiet --pipe --wait -p User=pttd -p Group=pttd "
             "-p LoadCredential=api_key:/etc/pttd/api_key -p 'SupplementaryGroups=audio gpio' "
             "bash -c 'stat -c \"credential mode %a\" $CREDENTIALS_DIRECTORY/api_key; "
             "/usr/local/bin/pttd check --no-devices'", check=False)
    if "pttd check: everything looks right" not in out or KEY in out:
        raise StepFailed(f"pttd check with the systemd credential: {out[-1200:]}")
    mode = re.search(r"credential mode (\d+)", out)
    return (f"emulator unit up; mic hw:Loopback,0,0, speaker hw:Speaker,0,0; mock pins; "
            f"pttd check as User=pttd passes with the credential at mode "
            f"{mode.group(1) if mode else '?'}")


def start() -> str:
    try:
        sh("systemctl start pttd", timeout=120)
    except StepFailed as exc:
        said = sh("journalctl -u pttd -b -n 25 --no-pager -o cat", check=False)
        raise StepFailed(f"{exc}; the journal says:\n{said[-2500:]}") from None
    status = wait_for("READY and healthy", ready_and_healthy, 60)
    return f"StatusText={status!r}"


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
