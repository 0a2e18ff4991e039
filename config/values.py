"""Turning TOML values into typed config values, with messages that say what is allowed.

`config/__init__.py` declares each key once (type, default, choices or bounds); these helpers
read those declarations, so a new key needs no code here, and every message names the file,
the key, the value as the user wrote it and, for environment overrides, the variable:

    >>> convert(40, int, {"choices": (10, 20, 40)}, "pttd.toml: [audio] period_ms", "")
    40
    >>> convert(30, int, {"choices": (10, 20, 40)}, "pttd.toml: [audio] period_ms", "")
    Traceback (most recent call last):
    config.values.ConfigError: pttd.toml: [audio] period_ms = 30: must be one of 10, 20, 40
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Sequence
from typing import Any


class ConfigError(Exception):
    """A config problem, with a message that names the file and the key."""


def fmt(value: Any) -> str:
    """A value as a TOML user would write it, on one line whatever it contains."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{...}"
    return repr(value)


def _num(x: float) -> str:
    """A bound as written: whole numbers in full (1048576, not 1.04858e+06)."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _allowed(meta: dict[str, Any], kind: str) -> str:
    if meta.get("choices"):
        return "must be one of " + ", ".join(fmt(c) if isinstance(c, str) else str(c)
                                             for c in meta["choices"])
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and hi is not None:
        return f"must be {kind} from {_num(lo)} to {_num(hi)}"
    return f"must be {kind}"


_KIND = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def convert(value: Any, typ: Any, meta: dict[str, Any], where: str, origin: str) -> Any:
    kind = _KIND.get(typ, str(typ))
    if typ is bool:
        ok = isinstance(value, bool)
    elif typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typ is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            value = float(value)
            ok = math.isfinite(value)
    else:
        ok = isinstance(value, str) and "\x00" not in value
    if not ok:
        raise ConfigError(f"{where} = {fmt(value)}{origin}: {_allowed(meta, kind)}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where} = {fmt(value)}{origin}: {_allowed(meta, kind)}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{where} = {fmt(value)}{origin}: {_allowed(meta, kind)}")
    return value


# A BCP-47 tag as the API takes them: a language, then optional script, region or variant.
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def string_list(value: Any, item: str, where: str) -> tuple[str, ...]:
    """A list of strings; `item` says what each is ("language": a BCP-47 tag)."""
    if not isinstance(value, list):
        what, example = (("BCP-47 language tags", '["en-GB", "cy"]') if item == "language"
                         else (f"{item}s", '["Raspberry Pi", "Leeds"]'))
        raise ConfigError(f"{where} = {fmt(value)}: must be a list of {what}, e.g. {example}")
    out: list[str] = []
    for entry in value:
        if not isinstance(entry, str) or not entry.strip() or not entry.isprintable():
            raise ConfigError(f"{where}: {fmt(entry)} is not a {item} "
                              "(each entry must be a non-empty string on one line)")
        if item == "language" and not _LANGUAGE.fullmatch(entry):
            raise ConfigError(f"{where}: {fmt(entry)} is not a BCP-47 language tag "
                              '(e.g. "en", "en-GB", "pt-BR")')
        if entry in out:
            raise ConfigError(f"{where}: {fmt(entry)} is listed twice")
        out.append(entry)
    return tuple(out)


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """What follows an unknown name in a message: the likely typo's fix, else every known name."""
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else f"; known: {', '.join(known)}"


def unknown_key(name: str, known: list[str], where: str) -> ConfigError:
    return ConfigError(f"{where}: unknown key {name!r}{did_you_mean(name, known)}")


def env_origin(env_keys: dict[tuple[str, str], str], section: str, key: str) -> str:
    """Names the environment variable a value came from, since the file does not show it."""
    var = env_keys.get((section, key))
    return f" (from ${var})" if var else ""
