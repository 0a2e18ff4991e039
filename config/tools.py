"""[tools]: `[[tools.command]]` tables, checked when the file is loaded.

A command is a program the model may run, declared to it as a function. Its `parameters` are a
small subset of JSON schema (an object whose properties are strings, numbers, integers or
booleans, with `enum`, `minimum`, `maximum` and `required`), and its `argv` names them as whole
items ("{room}"), so no argument ever passes through a shell or is split. Every mistake is
reported with the table's position and name, the key and the file, before the daemon starts:

    >>> parse_commands([{"name": "porch_light", "description": "Porch light on or off",
    ...                  "argv": ["/usr/local/bin/porch", "{state}"],
    ...                  "parameters": {"type": "object", "required": ["state"], "properties":
    ...                                 {"state": {"type": "string", "enum": ["on", "off"]}}}}],
    ...                "pttd.toml: ")[0].argv
    ('/usr/local/bin/porch', '{state}')
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from config.values import did_you_mean

# The functions pttd itself offers (daemon/actions/builtins.py); a command may not take a name.
BUILTIN_NAMES = ("set_volume", "change_volume", "set_timer", "cancel_timer", "list_timers")
TYPES = ("string", "number", "integer", "boolean")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
TIMEOUT_S = (0.1, 600.0)
_COMMAND_KEYS = ("name", "description", "parameters", "argv", "timeout_s")
_PROPERTY_KEYS = ("type", "description", "enum", "minimum", "maximum")
_SCHEMA_KEYS = ("type", "properties", "required")


@dataclass(frozen=True)
class CommandConfig:
    """One [[tools.command]] table; `parameters` is the checked schema as written."""

    name: str
    description: str
    argv: tuple[str, ...]
    parameters: dict[str, Any]
    timeout_s: float = 10.0


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _matches(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return _is_number(value)


def _only(table: dict[str, Any], keys: Any, where: str) -> None:
    """Refuse a key the table does not take, naming the likely one meant."""
    for key in table:
        if key not in keys:
            raise ValueError(f"{where}: unknown key {key!r}{did_you_mean(key, keys)}")


def _property(name: str, spec: Any, where: str) -> dict[str, Any]:
    here = f"{where} parameters.properties.{name}"
    if not NAME.fullmatch(name):
        raise ValueError(f"{here}: a parameter name is letters, digits and _ (at most 64)")
    if not isinstance(spec, dict):
        raise ValueError(f"{here}: must be a table such as {{type = \"string\"}}")
    _only(spec, _PROPERTY_KEYS, here)
    kind = spec.get("type")
    if kind not in TYPES:
        raise ValueError(f"{here}.type = {_show(kind)}: must be one of {', '.join(TYPES)}")
    if not isinstance(spec.get("description", ""), str):
        raise ValueError(f"{here}.description: must be a string")
    if "enum" in spec:
        enum = spec["enum"]
        if not isinstance(enum, list) or not enum or not all(_matches(kind, v) for v in enum):
            raise ValueError(f"{here}.enum = {_show(enum)}: must be a non-empty list of "
                             f"{kind} values")
    for bound in ("minimum", "maximum"):
        if bound in spec and (kind not in ("number", "integer") or not _is_number(spec[bound])):
            raise ValueError(f"{here}.{bound}: only a number or integer parameter has one, and "
                             "it must be a number")
    return dict(spec)


def check_parameters(schema: Any, where: str) -> dict[str, Any]:
    """The schema if it is inside the subset pttd validates; else ValueError naming the key."""
    if not isinstance(schema, dict):
        raise ValueError(f"{where} parameters: must be a table with type = \"object\"")
    _only(schema, _SCHEMA_KEYS, f"{where} parameters")
    if schema.get("type", "object") != "object":
        raise ValueError(f"{where} parameters.type = {_show(schema['type'])}: must be \"object\"")
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        raise ValueError(f"{where} parameters.properties: must be a table of parameters")
    checked = {name: _property(name, spec, where) for name, spec in props.items()}
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ValueError(f"{where} parameters.required: must be a list of parameter names")
    for name in required:
        if name not in checked:
            raise ValueError(f"{where} parameters.required: {name!r} is not in "
                             "parameters.properties")
    return {"type": "object", "properties": checked, "required": list(required)}


def _argv(value: Any, params: dict[str, Any], where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise ValueError(f"{where} argv: must be a non-empty list of strings, e.g. "
                         "[\"/usr/local/bin/porch-light\", \"{state}\"]")
    if not value[0].startswith("/"):
        raise ValueError(f"{where} argv[0] = {_show(value[0])}: must be an absolute path (no "
                         "shell and no PATH search)")
    for i, item in enumerate(value):
        whole = PLACEHOLDER.fullmatch(item)
        if whole and whole.group(1) not in params["properties"]:
            raise ValueError(f"{where} argv[{i}] = {_show(item)}: no parameter "
                             f"{whole.group(1)!r} in parameters.properties")
        if not whole and PLACEHOLDER.search(item):
            raise ValueError(f"{where} argv[{i}] = {_show(item)}: a parameter fills a whole "
                             "argv item; write it as its own item")
        if "\x00" in item:
            raise ValueError(f"{where} argv[{i}]: contains a NUL byte")
    if PLACEHOLDER.fullmatch(value[0]):
        raise ValueError(f"{where} argv[0]: the program cannot be a parameter")
    return tuple(value)


def _command(table: Any, where: str) -> CommandConfig:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: must be a table")
    _only(table, _COMMAND_KEYS, where)
    name = table.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"{where} name = {_show(name)}: must be letters, digits and _ "
                         "(at most 64, not starting with a digit)")
    where = f"{where} ({name})"
    if name in BUILTIN_NAMES:
        raise ValueError(f"{where} name: {name!r} is a built-in function")
    description = table.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"{where} description: must say what the command does (the model "
                         "reads it to decide when to call it)")
    params = check_parameters(table.get("parameters", {}), where)
    timeout = table.get("timeout_s", 10.0)
    lo, hi = TIMEOUT_S
    if not _is_number(timeout) or not lo <= timeout <= hi:
        raise ValueError(f"{where} timeout_s = {_show(timeout)}: must be a number from "
                         f"{lo:g} to {hi:g}")
    return CommandConfig(name, description.strip(), _argv(table.get("argv"), params, where),
                         params, float(timeout))


def parse_commands(value: Any, prefix: str) -> tuple[CommandConfig, ...]:
    """The [[tools.command]] tables; `prefix` (the file name and ": ") starts each message."""
    if not isinstance(value, list):
        raise ValueError(f"{prefix}[tools] command: must be [[tools.command]] tables")
    commands = tuple(_command(t, f"{prefix}[[tools.command]] #{i}")
                     for i, t in enumerate(value, 1))
    seen: set[str] = set()
    for i, c in enumerate(commands, 1):
        if c.name in seen:
            raise ValueError(f"{prefix}[[tools.command]] #{i} name = {_show(c.name)}: "
                             "another command has this name")
        seen.add(c.name)
    return commands


def check_disabled(names: tuple[str, ...], commands: tuple[CommandConfig, ...],
                   prefix: str) -> None:
    """Each `[tools] disabled` name must be a function that exists, or it is a typo."""
    known = (*BUILTIN_NAMES, *(c.name for c in commands))
    for name in names:
        if name not in known:
            raise ValueError(f"{prefix}[tools] disabled: {name!r} is not a function"
                             f"{did_you_mean(name, known)}")
