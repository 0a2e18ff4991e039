"""The systemd unit and install.sh, checked with the real tools: systemd-analyze, shellcheck,
and install.sh run twice into a throwaway root (plus --uninstall and --purge)."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "pttd.service"
SCRIPTS = [ROOT / "install.sh", ROOT / ".ci" / "run", *sorted((ROOT / "tests").rglob("*.sh"))]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run make setup")
    return path


def test_shell_scripts_are_shellcheck_clean() -> None:
    proc = subprocess.run([_tool("shellcheck"), *map(str, SCRIPTS)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _unit_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists here (verify checks it)."""
    exe = tmp_path / "pttd"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "pttd.service"
    unit.write_text(UNIT.read_text().replace("/opt/pttd/venv/bin/pttd", str(exe)))
    return unit


def test_unit_verifies_without_a_single_warning(tmp_path: Path) -> None:
    unit = _unit_copy(tmp_path)
    proc = subprocess.run([_tool("systemd-analyze"), "verify", "--man=no", "--generators=no",
                           str(unit)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout + proc.stderr == ""


def test_user_unit_verifies_too(tmp_path: Path) -> None:
    exe = tmp_path / "pttd"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "pttd-user.service"
    unit.write_text((UNIT.parent / "pttd-user.service").read_text()
                    .replace("/opt/pttd/venv/bin/pttd", str(exe)))
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    proc = subprocess.run([_tool("systemd-analyze"), "--user", "verify", "--man=no",
                           "--generators=no", str(unit)], capture_output=True, text=True,
                          cwd=tmp_path,
                          env={"XDG_RUNTIME_DIR": str(runtime), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0
    assert proc.stdout + proc.stderr == ""


def test_unit_security_exposure_is_1_7_or_lower(tmp_path: Path) -> None:
    unit = _unit_copy(tmp_path)
    proc = subprocess.run([_tool("systemd-analyze"), "security", "--offline=yes", str(unit)],
                          capture_output=True, text=True, cwd=tmp_path)
    print(proc.stdout)
    score = re.search(r"Overall exposure level for pttd\.service: (\d+\.\d+)", proc.stdout)
    assert score is not None, proc.stdout + proc.stderr
    assert float(score.group(1)) <= 1.7


def test_unit_has_the_contract_settings() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=30", "Restart=on-failure",
                 "RestartPreventExitStatus=78", "ExecReload=/bin/kill -HUP $MAINPID",
                 "User=pttd", "SupplementaryGroups=audio gpio",
                 "WorkingDirectory=%t/pttd", "Environment=LG_WD=%t/pttd", "StateDirectory=pttd",
                 "LoadCredential=api_key:/etc/pttd/api_key", "RuntimeDirectory=pttd",
                 "ProtectSystem=strict", "DevicePolicy=closed", "DeviceAllow=char-alsa rw",
                 "CapabilityBoundingSet=", "SystemCallFilter=@system-service",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "NoNewPrivileges=yes"):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    assert "network-online.target" in text and "time-sync.target" in text
    assert "sound.target" in text


def _install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(ROOT / "install.sh"), "--root", str(root), *args],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _throwaway_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        src = Path("/etc") / name
        if src.exists():
            shutil.copy2(src, root / "etc" / name)
    return root


def test_install_twice_then_uninstall_and_purge(tmp_path: Path) -> None:
    root = _throwaway_root(tmp_path)
    key = tmp_path / "key.txt"
    key.write_text("AIzaSyINSTALLTESTKEY\n")
    first = _install(root, "--api-key-file", str(key))
    assert "pttd is installed" in first.stdout
    assert "everything looks right" in first.stdout
    assert "AIzaSyINSTALLTESTKEY" not in first.stdout + first.stderr

    etc = root / "etc" / "pttd"
    api_key = etc / "api_key"
    assert api_key.read_text().strip() == "AIzaSyINSTALLTESTKEY"
    assert stat.S_IMODE(api_key.stat().st_mode) == 0o600 and api_key.stat().st_uid == 0
    assert (etc / "pttd.toml").read_text() == (ROOT / "config" / "pttd.toml").read_text()
    assert stat.S_IMODE((etc / "pttd.toml").stat().st_mode) == 0o644
    unit = root / "etc" / "systemd" / "system" / "pttd.service"
    assert unit.read_text() == UNIT.read_text()
    wants = unit.parent / "multi-user.target.wants" / "pttd.service"
    assert wants.is_symlink() and str(wants.readlink()) == "/etc/systemd/system/pttd.service"
    assert (root / "opt" / "pttd" / "venv" / "bin" / "pttd").exists()
    link = root / "usr" / "local" / "bin" / "pttd"
    assert str(link.readlink()) == "/opt/pttd/venv/bin/pttd"
    passwd = (root / "etc" / "passwd").read_text()
    user = next(line for line in passwd.splitlines() if line.startswith("pttd:"))
    assert user.endswith(":/nonexistent:/usr/sbin/nologin")
    groups = (root / "etc" / "group").read_text().splitlines()
    for group in ("audio", "gpio"):
        members = next(g for g in groups if g.startswith(group + ":")).split(":")[3]
        assert "pttd" in members.split(",")

    before = {p: (p.stat().st_mtime_ns, p.stat().st_mode) for p in root.rglob("*")
              if p.is_file() and "venv" not in p.parts}
    second = _install(root, "--api-key-file", str(key))
    assert "nothing to change" in second.stdout
    after = {p: (p.stat().st_mtime_ns, p.stat().st_mode) for p in root.rglob("*")
             if p.is_file() and "venv" not in p.parts}
    assert after == before

    # A user's edited config is never overwritten; the new default goes beside it.
    (etc / "pttd.toml").write_text((etc / "pttd.toml").read_text() + "# mine\n")
    third = _install(root)
    assert (etc / "pttd.toml").read_text().endswith("# mine\n")
    assert (etc / "pttd.toml.new").read_text() == (ROOT / "config" / "pttd.toml").read_text()
    assert "pttd.toml.new" in third.stdout

    gone = _install(root, "--uninstall")
    assert "removed user pttd" in gone.stdout
    assert not unit.exists() and not wants.is_symlink() and not link.is_symlink()
    assert not (root / "opt" / "pttd").exists()
    assert api_key.exists() and (etc / "pttd.toml").exists()
    assert "pttd:" not in (root / "etc" / "passwd").read_text()
    _install(root, "--uninstall", "--purge")
    assert not etc.exists()


def test_the_built_package_holds_every_module(tmp_path: Path) -> None:
    """What install.sh installs is a built wheel, not this tree: every module must be in it
    (the booted-VM check once found daemon/actions missing from a listed-packages build)."""
    import sys
    import zipfile
    src = tmp_path / "src"  # a clean copy: a stale build/ here would hide a missing package
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(tmp_path), str(src)], check=True, capture_output=True)
    wheel, = tmp_path.glob("pttd-*.whl")
    built = set(zipfile.ZipFile(wheel).namelist())
    ours = {str(p.relative_to(ROOT)) for top in ("daemon", "hw", "config")
            for p in (ROOT / top).rglob("*.py")}
    assert ours - built == set()
    assert "config/pttd.toml" in built
