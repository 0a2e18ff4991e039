"""API key resolution order, the 0600 rule, a key that never shows, and `pttd check`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import ConfigError, parse
from config.apikey import ApiKey, resolve

ROOT = Path(__file__).resolve().parent.parent


def _key_file(path: Path, value: str, mode: int = 0o600) -> Path:
    path.write_text(value + "\n")
    path.chmod(mode)
    return path


def _cfg(key_file: Path | str) -> object:
    return parse(f'[live]\napi_key_file = "{key_file}"\n', "t.toml")


def test_resolution_order(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    _key_file(creds / "api_key", "from-credential", 0o400)
    kf = _key_file(tmp_path / "key", "from-file")
    env = {"CREDENTIALS_DIRECTORY": str(creds), "GEMINI_API_KEY": "from-gemini",
           "GOOGLE_API_KEY": "from-google"}
    cfg = _cfg(kf)
    assert resolve(cfg, env).reveal() == "from-credential"
    del env["CREDENTIALS_DIRECTORY"]
    assert resolve(cfg, env).reveal() == "from-file"
    kf.unlink()
    assert resolve(cfg, env).reveal() == "from-gemini"
    del env["GEMINI_API_KEY"]
    key = resolve(cfg, env)
    assert key.reveal() == "from-google" and key.source == "$GOOGLE_API_KEY"
    del env["GOOGLE_API_KEY"]
    with pytest.raises(ConfigError, match="no API key"):
        resolve(cfg, env)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    kf = _key_file(tmp_path / "key", "k", mode)
    with pytest.raises(ConfigError) as err:
        resolve(_cfg(kf), {})
    assert f"chmod 600 {kf}" in str(err.value)
    assert f"{mode:04o}" in str(err.value)


def test_empty_key_file_is_refused(tmp_path: Path) -> None:
    kf = _key_file(tmp_path / "key", "")
    with pytest.raises(ConfigError, match="empty"):
        resolve(_cfg(kf), {})


def test_key_never_shows_in_repr_or_str() -> None:
    key = ApiKey("file /etc/pttd/api_key", "SUPERSECRET")
    for text in (repr(key), str(key), f"{key}", repr([key]), str({"k": key})):
        assert "SUPERSECRET" not in text
    assert key.reveal() == "SUPERSECRET"


def _check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", "check", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=60)


def test_check_exit_codes(tmp_path: Path) -> None:
    kf = _key_file(tmp_path / "key", "SECRETVALUE")
    good = tmp_path / "good.toml"
    good.write_text(f'[live]\napi_key_file = "{kf}"\n[audio]\ncapture_device = "null"\n'
                    'playback_device = "null"\n')
    env = {k: v for k, v in os.environ.items() if not k.endswith("API_KEY")}
    ok = _check("--config", str(good), env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "everything looks right" in ok.stdout
    assert "SECRETVALUE" not in ok.stdout + ok.stderr

    bad = tmp_path / "bad.toml"
    bad.write_text("[audio]\nperiod_ms = 7\n")
    res = _check("--config", str(bad), env=env)
    assert res.returncode == 78
    assert f"{bad}: [audio] period_ms = 7: must be one of 10, 20, 40, 50, 100, 200" in res.stdout

    kf.chmod(0o644)
    res = _check("--config", str(good), env=env)
    assert res.returncode == 78 and "chmod 600" in res.stdout

    kf.chmod(0o600)
    nodev = tmp_path / "nodev.toml"
    nodev.write_text(f'[live]\napi_key_file = "{kf}"\n[audio]\ncapture_device = "nosuchpcm"\n')
    res = _check("--config", str(nodev), env=env)
    assert res.returncode == 78
    assert '[audio] capture_device = "nosuchpcm" cannot be used' in res.stdout
    res = _check("--config", str(nodev), "--no-devices", env=env)
    assert res.returncode == 0, res.stdout
