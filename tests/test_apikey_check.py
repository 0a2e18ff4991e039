"""API key resolution order, the 0600 rule, a key that never shows, and `pttd check`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


def test_credential_is_trusted_whatever_its_group_bits(tmp_path: Path) -> None:
    """systemd 254+ makes a credential 0440 plus an ACL when User= is set; the user cannot
    change that, and the directory is systemd's own, so its mode is no reason to refuse."""
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o500)
    _key_file(creds / "api_key", "from-credential", 0o440)
    key = resolve(_cfg(tmp_path / "absent"), {"CREDENTIALS_DIRECTORY": str(creds)})
    assert key.reveal() == "from-credential"
    assert key.source == f"systemd credential {creds / 'api_key'}"


def test_ordinary_file_with_the_credential_mode_is_still_refused(tmp_path: Path) -> None:
    kf = _key_file(tmp_path / "key", "k", 0o440)
    with pytest.raises(ConfigError, match=f"mode 0440\\); run: chmod 600 {kf}"):
        resolve(_cfg(kf), {"CREDENTIALS_DIRECTORY": str(tmp_path / "nothing-here")})


def test_a_file_owned_by_someone_else_gets_a_sudo_fix(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    kf = _key_file(tmp_path / "key", "k", 0o640)
    monkeypatch.setattr(os, "geteuid", lambda: kf.stat().st_uid + 4242)
    with pytest.raises(ConfigError, match=f"run: sudo chmod 600 {kf}$"):
        resolve(_cfg(kf), {})


@pytest.mark.parametrize(("content", "wanted"), [("", "the file is empty"),
                                                 ("SECRET PART", "contains white space")])
def test_bad_credential_says_which_file_to_fix(tmp_path: Path, content: str, wanted: str) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    _key_file(creds / "api_key", content, 0o440)
    with pytest.raises(ConfigError) as err:
        resolve(_cfg(tmp_path / "absent"), {"CREDENTIALS_DIRECTORY": str(creds)})
    text = str(err.value)
    assert wanted in text
    assert "LoadCredential=api_key:" in text and "sudo systemctl restart pttd" in text
    assert "chmod" not in text and "SECRET" not in text


def test_empty_key_file_is_refused(tmp_path: Path) -> None:
    kf = _key_file(tmp_path / "key", "")
    with pytest.raises(ConfigError, match="empty"):
        resolve(_cfg(kf), {})


def test_key_never_shows_in_repr_or_str() -> None:
    key = ApiKey("file /etc/pttd/api_key", "SUPERSECRET")
    for text in (repr(key), str(key), f"{key}", repr([key]), str({"k": key})):
        assert "SUPERSECRET" not in text
    assert key.reveal() == "SUPERSECRET"


def _check(*args: str, env: dict[str, str] | None = None,
           user: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["setpriv", f"--reuid={user}", "--regid=65534", "--clear-groups"] if user else []
    return subprocess.run([*prefix, sys.executable, "-m", "daemon", "check", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.endswith("API_KEY") and k != "CREDENTIALS_DIRECTORY"}


def test_check_accepts_a_0440_credential(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o500)
    _key_file(creds / "api_key", "CREDSECRETVALUE", 0o440)
    conf = tmp_path / "c.toml"
    conf.write_text(f'[live]\napi_key_file = "{tmp_path / "absent"}"\n')
    res = _check("--config", str(conf), "--no-devices",
                 env={**_clean_env(), "CREDENTIALS_DIRECTORY": str(creds)})
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"API key     from systemd credential {creds / 'api_key'}" in res.stdout
    assert "CREDSECRETVALUE" not in res.stdout + res.stderr


def test_check_refuses_a_0640_key_file_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    kf = _key_file(tmp_path / "key", "SECRETVALUE", 0o640)
    conf = tmp_path / "c.toml"
    conf.write_text(f'[live]\napi_key_file = "{kf}"\n')
    res = _check("--config", str(conf), "--no-devices", env=_clean_env())
    assert res.returncode == 78
    assert f"[live] api_key_file {kf}: readable by group or others (mode 0640); " \
           f"run: chmod 600 {kf}" in res.stdout
    assert "SECRETVALUE" not in res.stdout + res.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run pttd check as another user")
def test_check_as_a_user_who_cannot_read_the_key_says_to_use_sudo() -> None:
    with tempfile.TemporaryDirectory() as where:  # pytest's tmp_path is 0700 up the tree
        _check_as_nobody(Path(where))


def _check_as_nobody(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    kf = _key_file(tmp_path / "key", "SECRETVALUE", 0o600)
    conf = tmp_path / "c.toml"
    conf.write_text(f'[live]\napi_key_file = "{kf}"\n')
    conf.chmod(0o644)
    res = _check("--config", str(conf), "--no-devices", env=_clean_env(), user="nobody")
    assert res.returncode == 78, res.stdout + res.stderr
    assert "permission denied" in res.stdout and "sudo pttd check" in res.stdout
    assert "SECRETVALUE" not in res.stdout + res.stderr


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
