"""The system check's first steps: the booted machine (kernel, systemd, the ALSA loopback
cards), install.sh run twice, the user's configuration, and the service started::

    run([("install.sh, first run", install_first), ("systemctl start -> READY", start)])
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from vm_drive import CLONE, CONF, KEY, SHARE, StepFailed, ready_and_healthy, sh, tone, wait_for


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
