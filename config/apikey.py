"""Finding the API key, and holding it so it never reaches a log, a repr or an exception."""

from __future__ import annotations

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


def _read_key_file(path: Path, what: str) -> str:
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{what} {path}: readable by group or others "
                          f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path}: cannot read: {exc}") from None
    if not value:
        raise ConfigError(f"{what} {path}: the file is empty; put the API key in it")
    if any(c.isspace() for c in value):
        raise ConfigError(f"{what} {path}: the key contains white space; "
                          "the file must hold the key alone")
    return value


def resolve(cfg: Config, env: dict[str, str] | None = None) -> ApiKey:
    """Credential `api_key`, then live.api_key_file, then $GEMINI_API_KEY, then $GOOGLE_API_KEY."""
    env = dict(os.environ) if env is None else env
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / "api_key").exists():
        # systemd makes credentials 0400 for the service user, so the mode check holds.
        path = Path(creds) / "api_key"
        return ApiKey(f"systemd credential {path}", _read_key_file(path, "credential"))
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
        "(chmod 600), or set $GEMINI_API_KEY, or a systemd credential named api_key")
