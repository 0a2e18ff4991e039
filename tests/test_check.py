"""The installed `pttd` console script: `pttd check` and `pttd devices` as a user runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from daemon.devkit.simsink import SYSTEM_ALSA_CONF

ROOT = Path(__file__).resolve().parent.parent
PTTD = ROOT / ".venv" / "bin" / "pttd"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("API_KEY") and k != "CREDENTIALS_DIRECTORY"}
    return {**env, **extra}


def _shipped_config(tmp: Path) -> Path:
    """The shipped config, its key file moved where this machine certainly has none."""
    text = (ROOT / "config" / "pttd.toml").read_text()
    path = tmp / "pttd.toml"
    path.write_text(text.replace('api_key_file = "/etc/pttd/api_key"',
                                 f'api_key_file = "{tmp / "no-such-key"}"', 1))
    return path


def _pttd(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if not PTTD.exists():
        pytest.fail(f"{PTTD} is missing: run make setup")
    return subprocess.run([str(PTTD), *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=60)


def test_console_script_check_shipped_config_and_env_key(tmp_path: Path) -> None:
    res = _pttd("check", "--config", str(_shipped_config(tmp_path)), "--no-devices",
                env=_env(GEMINI_API_KEY="ENVSECRET123"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "API key     from $GEMINI_API_KEY" in res.stdout
    assert "ENVSECRET123" not in res.stdout + res.stderr


def test_console_script_check_without_any_key_is_ex_config(tmp_path: Path) -> None:
    res = _pttd("check", "--config", str(_shipped_config(tmp_path)), "--no-devices", env=_env())
    assert res.returncode == 78
    assert "no API key" in res.stdout
    assert str(tmp_path / "no-such-key") in res.stdout
    assert "Traceback" not in res.stderr


def test_devices_lists_a_configured_pcm(tmp_path: Path) -> None:
    conf = tmp_path / "asound.conf"
    conf.write_text("pcm.pttdprobe { type null }\n")
    res = _pttd("devices", env=_env(ALSA_CONFIG_PATH=f"{SYSTEM_ALSA_CONF}:{conf}"))
    assert res.returncode == 0, res.stderr
    names = [line.split()[0] for line in res.stdout.splitlines()]
    assert "pttdprobe" in names and "null" in names


def test_devices_with_no_pcm_at_all_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    res = _pttd("devices", env=_env(ALSA_CONFIG_PATH=str(empty)))
    assert res.returncode == 1
    assert "ALSA lists no PCMs" in res.stdout
    assert "Traceback" not in res.stderr
