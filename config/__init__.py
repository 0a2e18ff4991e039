"""pttd configuration: a TOML file loaded into frozen dataclasses.

Every key is declared once, below, with its type, default and allowed values; the loader and
its error messages are driven by those declarations, so a new key needs no new validation code.
`config/pttd.toml` documents every key for users.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from config.tools import CommandConfig, check_disabled, parse_commands
from config.values import ConfigError, convert, env_origin, fmt, string_list, unknown_key

DEFAULT_PATH = Path("/etc/pttd/pttd.toml")
SHIPPED_PATH = Path(__file__).with_name("pttd.toml")

# The exit status for a ConfigError (sysexits.h's EX_CONFIG): systemd/pttd.service stops
# restarting on it (RestartPreventExitStatus=78), so a bad file waits for the user.
EX_CONFIG = 78

VOICES = ("Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr")


def _key(*, choices: tuple[Any, ...] | None = None, lo: float | None = None,
         hi: float | None = None, item: str = "", doc: str = "") -> dict[str, Any]:
    return {"choices": choices, "lo": lo, "hi": hi, "item": item, "doc": doc}


def _opt(default: Any, **kw: Any) -> Any:
    return field(default=default, metadata=_key(**kw))


@dataclass(frozen=True)
class ContextTurn:
    """One turn of the initial conversation context sent after setup."""

    role: str = _opt("user", choices=("user", "model"))
    text: str = _opt("")


@dataclass(frozen=True)
class LiveConfig:
    """[live]: where the session goes and how it is set up."""

    endpoint: str = _opt("wss://generativelanguage.googleapis.com")
    api_key_file: str = _opt("/etc/pttd/api_key")
    api_version: str = _opt("auto", choices=("auto", "v1", "v1beta", "v1alpha"))
    model: str = _opt("gemini-3.8-live")
    response_modality: str = _opt("AUDIO", choices=("AUDIO", "TEXT"))
    voice: str = _opt("Kore", choices=VOICES)
    language_code: str = _opt("")
    system_instruction: str = _opt(
        "You are a helpful voice assistant on a small speaker. Answer briefly and clearly.")
    temperature: float = _opt(-1.0, lo=-1.0, hi=2.0)
    thinking_budget: int = _opt(-1, lo=-1, hi=32768)
    thinking_level: str = _opt("", choices=("", "minimal", "low", "medium", "high"))
    input_transcription: bool = _opt(True)
    output_transcription: bool = _opt(True)
    transcription_languages: tuple[str, ...] = _opt((), item="language")
    custom_vocabulary: tuple[str, ...] = _opt((), item="phrase")
    affective_dialog: bool = _opt(False)
    proactive_audio: bool = _opt(False)
    turn_detection: str = _opt("button", choices=("button", "server"))
    activity_handling: str = _opt("interrupt", choices=("interrupt", "no_interruption"))
    context_compression: bool = _opt(True)
    compression_trigger_tokens: int = _opt(0, lo=0, hi=1048576)
    google_search: bool = _opt(False)
    context: tuple[ContextTurn, ...] = _opt(())
    setup_timeout_s: float = _opt(10.0, lo=1.0, hi=120.0)
    keepalive_interval_s: float = _opt(20.0, lo=1.0, hi=300.0)
    keepalive_timeout_s: float = _opt(40.0, lo=1.0, hi=600.0)
    reconnect_min_s: float = _opt(0.5, lo=0.05, hi=60.0)
    reconnect_max_s: float = _opt(30.0, lo=1.0, hi=3600.0)


# ALSA periods on offer. Each period is one wake-up of the audio threads (and, through a
# sound server, of its client thread): 200 ms is five a second, 20 ms is fifty.
PERIODS_MS = (10, 20, 40, 50, 100, 200)


@dataclass(frozen=True)
class AudioConfig:
    """[audio]: the ALSA devices, their geometry, and the buffering either side."""

    capture_device: str = _opt("default")
    playback_device: str = _opt("default")
    capture_rate: int = _opt(16000, lo=8000, hi=192000)
    playback_rate: int = _opt(24000, lo=8000, hi=192000)
    capture_channels: int = _opt(1, lo=1, hi=8)
    capture_channel: int = _opt(-1, lo=-1, hi=7)
    period_ms: int = _opt(200, choices=PERIODS_MS)
    preroll_ms: int = _opt(300, lo=0, hi=2000)
    tail_ms: int = _opt(0, lo=0, hi=500)
    prebuffer_ms: int = _opt(80, lo=0, hi=2000)
    volume: float = _opt(1.0, lo=0.0, hi=4.0)


@dataclass(frozen=True)
class ButtonConfig:
    """[button]: the GPIO push button and how a press is read."""

    enabled: bool = _opt(True)
    pin: str = _opt("GPIO17")
    pull_up: bool = _opt(True)
    mode: str = _opt("hold", choices=("hold", "toggle"))
    debounce_ms: int = _opt(20, lo=0, hi=500)
    min_press_ms: int = _opt(150, lo=0, hi=5000)
    max_turn_s: float = _opt(60.0, lo=1.0, hi=600.0)


@dataclass(frozen=True)
class LedConfig:
    """[led]: the optional status LED."""

    pin: str = _opt("")
    pwm: bool = _opt(True)
    brightness: float = _opt(1.0, lo=0.0, hi=1.0)


@dataclass(frozen=True)
class EarconsConfig:
    """[earcons]: which cue sounds play, and how loud."""

    enabled: bool = _opt(True)
    listen_start: bool = _opt(True)
    listen_stop: bool = _opt(True)
    error: bool = _opt(True)
    volume: float = _opt(0.3, lo=0.0, hi=1.0)


@dataclass(frozen=True)
class ControlConfig:
    """[control]: the local control socket."""

    socket: str = _opt("/run/pttd/control.sock")


@dataclass(frozen=True)
class ToolsConfig:
    """[tools]: the functions the model may call (see config/tools.py)."""

    enabled: bool = _opt(True)
    disabled: tuple[str, ...] = _opt((), item="function name")
    command: tuple[CommandConfig, ...] = _opt(())


@dataclass(frozen=True)
class StateConfig:
    """[state]: where what outlives a restart (volume, timers) is kept."""

    dir: str = _opt("")  # "": $STATE_DIRECTORY (the unit's StateDirectory=), else /var/lib/pttd


@dataclass(frozen=True)
class LogConfig:
    """[log]: how much goes to the journal."""

    level: str = _opt("info", choices=("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class Config:
    """The whole file, one section per field; every key has a default."""

    live: LiveConfig = field(default_factory=LiveConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    button: ButtonConfig = field(default_factory=ButtonConfig)
    led: LedConfig = field(default_factory=LedConfig)
    earcons: EarconsConfig = field(default_factory=EarconsConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    state: StateConfig = field(default_factory=StateConfig)
    log: LogConfig = field(default_factory=LogConfig)
    path: str = ""


# Environment overrides for what users change most; documented in config/pttd.toml.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "PTTD_LOG_LEVEL": ("log", "level"),
    "PTTD_CAPTURE_DEVICE": ("audio", "capture_device"),
    "PTTD_PLAYBACK_DEVICE": ("audio", "playback_device"),
    "PTTD_ENDPOINT": ("live", "endpoint"),
    "PTTD_CONTROL_SOCKET": ("control", "socket"),
}


def _build(cls: type, data: Any, prefix: str, section: str,
           env_keys: dict[tuple[str, str], str]) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}[{section}] must be a table, got {fmt(data)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in fields:
            raise unknown_key(name, list(fields), f"{prefix}[{section}]")
        where = f"{prefix}[{section}] {name}"
        if hints[name] == tuple[ContextTurn, ...]:
            if not isinstance(value, list):
                raise ConfigError(f"{where}: must be a list of [[{section}.{name}]] tables")
            kwargs[name] = tuple(_build(ContextTurn, v, prefix, f"{section}.{name}", {})
                                 for v in value)
            continue
        if hints[name] == tuple[str, ...]:
            kwargs[name] = string_list(value, dict(fields[name].metadata)["item"], where)
            continue
        if hints[name] == tuple[CommandConfig, ...]:
            try:
                kwargs[name] = parse_commands(value, prefix)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            continue
        kwargs[name] = convert(value, hints[name], dict(fields[name].metadata), where,
                               env_origin(env_keys, section, name))
    return cls(**kwargs)


def _check_consistency(cfg: Config, prefix: str, env_keys: dict[tuple[str, str], str]) -> None:
    live = cfg.live
    if live.reconnect_max_s < live.reconnect_min_s:
        raise ConfigError(f"{prefix}[live] reconnect_max_s = {live.reconnect_max_s:g}: "
                          f"must not be below reconnect_min_s ({live.reconnect_min_s:g})")
    if live.keepalive_timeout_s < live.keepalive_interval_s:
        raise ConfigError(f"{prefix}[live] keepalive_timeout_s = {live.keepalive_timeout_s:g}: "
                          f"must not be below keepalive_interval_s "
                          f"({live.keepalive_interval_s:g})")
    check_endpoint(live.endpoint, prefix, env_origin(env_keys, "live", "endpoint"))
    if live.compression_trigger_tokens and not live.context_compression:
        raise ConfigError(f"{prefix}[live] compression_trigger_tokens = "
                          f"{live.compression_trigger_tokens}: needs context_compression = true")
    if live.custom_vocabulary and not live.input_transcription:
        raise ConfigError(f"{prefix}[live] custom_vocabulary: biases the transcription of what "
                          "you say, so it needs input_transcription = true")
    if live.transcription_languages and not live.input_transcription:
        raise ConfigError(f"{prefix}[live] transcription_languages: hints for the transcription "
                          "of what you say, so it needs input_transcription = true")
    try:
        check_disabled(cfg.tools.disabled, cfg.tools.command, prefix)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    a = cfg.audio
    if a.capture_channel >= a.capture_channels:
        raise ConfigError(f"{prefix}[audio] capture_channel = {a.capture_channel}: must be -1 "
                          f"(mix all) or below capture_channels ({a.capture_channels})")


def check_endpoint(url: str, prefix: str = "", origin: str = "") -> None:
    """Refuse an endpoint that would send the API key in clear: wss://, or ws:// to loopback.

    The loader checks the file with it and LiveClient checks again whatever it is given, so a
    config built in code cannot bypass the rule:

        check_endpoint("ws://127.0.0.1:8765")   # the local emulator: fine
        check_endpoint("ws://example.com")      # ConfigError naming the key and the rule
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    where = f"{prefix}[live] endpoint = {fmt(url)}{origin}"
    if scheme not in ("ws", "wss"):
        raise ConfigError(f"{where}: must start with wss:// (or ws:// for a loopback host)")
    if scheme == "ws" and not is_loopback_url(url):
        raise ConfigError(f"{where}: ws:// is only allowed to a loopback host "
                          "(127.0.0.1, ::1, localhost); use wss://")


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is a loopback address; plain ws:// is allowed only there."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse(text: str, name: str = "pttd.toml", env: dict[str, str] | None = None) -> Config:
    """Parse TOML text into a Config; `name` prefixes every message."""
    prefix = f"{name}: "
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: TOML syntax error: {exc}") from None
    env_keys: dict[tuple[str, str], str] = {}
    for var, (section, key) in (ENV_OVERRIDES.items() if env else ()):
        if var in env:
            table = data.setdefault(section, {})
            if isinstance(table, dict):
                table[key] = env[var]
                env_keys[section, key] = var
    sections = {f.name: f for f in dataclasses.fields(Config) if f.name != "path"}
    hints = get_type_hints(Config)
    kwargs: dict[str, Any] = {}
    for section, value in data.items():
        if section not in sections:
            raise unknown_key(section, list(sections), name)
        kwargs[section] = _build(hints[section], value, prefix, section, env_keys)
    cfg = Config(**kwargs, path=name)
    _check_consistency(cfg, prefix, env_keys)
    return cfg


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    """--config, else $PTTD_CONFIG, else /etc/pttd/pttd.toml."""
    if path:
        return Path(path)
    env = os.environ.get("PTTD_CONFIG")
    return Path(env) if env else DEFAULT_PATH


def state_dir(cfg: Config) -> Path:
    """[state] dir, else systemd's $STATE_DIRECTORY (StateDirectory=pttd), else /var/lib/pttd."""
    env = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(cfg.state.dir or env or "/var/lib/pttd")


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate a config file, applying the documented environment overrides."""
    p = resolve_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file (copy config/pttd.toml there, "
                          "or pass --config PATH)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file: {exc}") from None
    return parse(text, str(p), dict(os.environ))
