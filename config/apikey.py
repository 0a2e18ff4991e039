"""Finding the API key, and holding it so it never reaches a log, a repr or an exception.

Where the key may come from, first found wins::

    key = resolve(config.load("/etc/pttd/pttd.toml"))
    print(key)          # <API key from systemd credential /run/credentials/pttd.service/api_key>
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from config import Config, ConfigError


@dataclass(frozen=True)
class ApiKey:
    """The key and where it came from; repr/str show only the source."""

    source: str
    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return f"<API key from {self.source}>"

    def __repr__(self) -> str:
        return f"ApiKey(source={self.source!r})"


def _fix(command: str, st: os.stat_result) -> str:
    """The command as the reader can run it: only a file's owner (or root) may chmod it."""
    return command if os.geteuid() in (0, st.st_uid) else f"sudo {command}"


def _unreadable(what: str, path: Path, exc: OSError) -> ConfigError:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ConfigError(f"{what} {path}: permission denied: the key is readable by its owner "
                           "alone, as it should be; run this as root (sudo pttd check)")
    return ConfigError(f"{what} {path}: cannot read: {exc.strerror}")


def _read(path: Path, what: str, fix_empty: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise _unreadable(what, path, exc) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path}: not text; the file must hold the key alone "
                          f"({fix_empty})") from None
    if not value:
        raise ConfigError(f"{what} {path}: the file is empty; {fix_empty}")
    if any(c.isspace() for c in value):
        raise ConfigError(f"{what} {path}: the key contains white space; the file must hold "
                          f"the key alone ({fix_empty})")
    return value


def _read_key_file(path: Path, what: str) -> str:
    """An ordinary key file: its owner alone may read it (mode 0600 or 0400)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise _unreadable(what, path, exc) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{what} {path}: readable by group or others "
                          f"(mode {stat.S_IMODE(st.st_mode):04o}); run: "
                          f"{_fix(f'chmod 600 {path}', st)}")
    return _read(path, what, f"put the API key in it: {_fix(f'nano {path}', st)}")


def _read_credential(path: Path) -> str:
    """A systemd credential: trusted whatever its mode.

    systemd makes `$CREDENTIALS_DIRECTORY` per service and unreachable to other users; since
    systemd 254 a credential is 0440 with an ACL for the service's `User=`, and the user cannot
    change that. What they can change is the file `LoadCredential=` copies from.
    """
    return _read(path, "systemd credential",
                 "fix the file the unit's LoadCredential=api_key:... line names "
                 "(systemctl cat pttd), then: sudo systemctl restart pttd")


def resolve(cfg: Config, env: dict[str, str] | None = None) -> ApiKey:
    """Credential `api_key`, then live.api_key_file, then $GEMINI_API_KEY, then $GOOGLE_API_KEY."""
    env = dict(os.environ) if env is None else env
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / "api_key").exists():
        path = Path(creds) / "api_key"
        return ApiKey(f"systemd credential {path}", _read_credential(path))
    if cfg.live.api_key_file:
        path = Path(cfg.live.api_key_file)
        if path.exists():
            return ApiKey(f"file {path}",
                          _read_key_file(path, f"{cfg.path}: [live] api_key_file"))
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        value = env.get(var, "").strip()
        if value:
            return ApiKey(f"${var}", value)
    raise ConfigError(
        f"{cfg.path}: no API key: put it in {cfg.live.api_key_file or '[live] api_key_file'} "
        "(sudo ./install.sh --api-key-file FILE does it, mode 0600), or set $GEMINI_API_KEY, "
        "or a systemd credential named api_key")
