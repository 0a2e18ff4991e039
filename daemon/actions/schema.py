"""A function's arguments checked against its parameters (config/tools.py's JSON-schema subset),
and the parameters as the Live API's setup wants them.

The model's arguments are untrusted input: a wrong type, a missing or unknown key, a value out
of range gets a precise message for the model to read (and say), never an exception upward.

    >>> schema = {"type": "object", "required": ["percent"],
    ...           "properties": {"percent": {"type": "integer", "minimum": 0, "maximum": 100}}}
    >>> validate(schema, {"percent": 30.0})
    {'percent': 30}
    >>> validate(schema, {"percent": 130})
    Traceback (most recent call last):
    ...
    daemon.actions.schema.ArgumentError: percent = 130: must be at most 100
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

_WIRE_TYPES = {"string": "STRING", "number": "NUMBER", "integer": "INTEGER",
               "boolean": "BOOLEAN"}


class ArgumentError(ValueError):
    """Arguments that do not fit the function's parameters; the message is for the model."""


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _coerce(name: str, spec: Mapping[str, Any], value: Any) -> Any:
    kind = spec["type"]
    bad = ArgumentError(f"{name} = {_show(value)}: must be {'an' if kind == 'integer' else 'a'} "
                        f"{kind}")
    if kind == "string":
        if not isinstance(value, str):
            raise bad
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise bad
    else:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        if not math.isfinite(value):
            raise bad
        if kind == "integer":
            # JSON has one number type: the model may well send 30.0 for 30.
            if value != int(value):
                raise bad
            value = int(value)
        if "minimum" in spec and value < spec["minimum"]:
            raise ArgumentError(f"{name} = {_show(value)}: must be at least {spec['minimum']:g}")
        if "maximum" in spec and value > spec["maximum"]:
            raise ArgumentError(f"{name} = {_show(value)}: must be at most {spec['maximum']:g}")
    if "enum" in spec and value not in spec["enum"]:
        raise ArgumentError(f"{name} = {_show(value)}: must be one of "
                            f"{', '.join(_show(v) for v in spec['enum'])}")
    return value


def validate(schema: Mapping[str, Any], args: Any) -> dict[str, Any]:
    """The arguments, checked and normalised (integral floats to int); else ArgumentError."""
    if not isinstance(args, Mapping):
        raise ArgumentError("the arguments must be an object")
    props: Mapping[str, Any] = schema.get("properties", {})
    unknown = [k for k in args if k not in props]
    if unknown:
        known = ", ".join(props) or "none"
        raise ArgumentError(f"unknown argument {unknown[0]!r}; this function takes: {known}")
    missing = [k for k in schema.get("required", ()) if k not in args]
    if missing:
        raise ArgumentError(f"missing required argument {missing[0]!r}")
    return {k: _coerce(k, props[k], v) for k, v in args.items()}


def to_wire(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as an OpenAPI-style `Schema` (what the SDK sends): upper-case types, and
    `enum` only on strings, where the API takes it; other enums are spelled out in the
    description so the model still sees them."""
    props: dict[str, Any] = {}
    for name, spec in schema.get("properties", {}).items():
        out: dict[str, Any] = {"type": _WIRE_TYPES[spec["type"]]}
        description = spec.get("description", "")
        if "enum" in spec and spec["type"] == "string":
            out["enum"] = list(spec["enum"])
        elif "enum" in spec:
            allowed = ", ".join(_show(v) for v in spec["enum"])
            description = f"{description} (one of {allowed})".strip()
        if description:
            out["description"] = description
        for bound in ("minimum", "maximum"):
            if bound in spec:
                out[bound] = spec[bound]
        props[name] = out
    wire: dict[str, Any] = {"type": "OBJECT", "properties": props}
    if schema.get("required"):
        wire["required"] = list(schema["required"])
    return wire
