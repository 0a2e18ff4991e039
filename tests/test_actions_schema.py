"""[[tools.command]] tables checked at load with messages naming the key and file, and the
model's arguments checked against the same schema subset: pure."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, parse
from config.tools import BUILTIN_NAMES
from daemon.actions.builtins import BUILTINS
from daemon.actions.commands import argv_for
from daemon.actions.schema import ArgumentError, to_wire, validate

PORCH = '''
[[tools.command]]
name = "porch_light"
description = "Turn the porch light on or off."
argv = ["/usr/local/bin/porch-light", "{state}", "--for", "{minutes}"]
timeout_s = 5
[tools.command.parameters]
type = "object"
required = ["state"]
[tools.command.parameters.properties.state]
type = "string"
enum = ["on", "off"]
[tools.command.parameters.properties.minutes]
type = "integer"
minimum = 1
'''


def test_a_command_table_loads() -> None:
    cfg = parse(PORCH, "/etc/pttd/pttd.toml")
    (cmd,) = cfg.tools.command
    assert cmd.name == "porch_light" and cmd.timeout_s == 5.0
    assert cmd.argv == ("/usr/local/bin/porch-light", "{state}", "--for", "{minutes}")
    assert cmd.parameters["required"] == ["state"]
    # Whole items only; an optional argument left out drops its item.
    assert argv_for(cmd, {"state": "on; rm -rf /"}) == [
        "/usr/local/bin/porch-light", "on; rm -rf /", "--for"]
    assert argv_for(cmd, {"state": "off", "minutes": 5}) == [
        "/usr/local/bin/porch-light", "off", "--for", "5"]


BAD = [
    (PORCH.replace('name = "porch_light"', 'name = "set_volume"'),
     "[[tools.command]] #1 (set_volume) name: 'set_volume' is a built-in function"),
    (PORCH.replace('name = "porch_light"', 'name = "porch light"'),
     '[[tools.command]] #1 name = "porch light": must be letters, digits and _'),
    (PORCH.replace('"/usr/local/bin/porch-light"', '"porch-light"'),
     '(porch_light) argv[0] = "porch-light": must be an absolute path'),
    (PORCH.replace('"{state}"', '"--state={state}"'),
     '(porch_light) argv[1] = "--state={state}": a parameter fills a whole argv item'),
    (PORCH.replace('"{minutes}"', '"{hours}"'),
     "(porch_light) argv[3] = \"{hours}\": no parameter 'hours' in parameters.properties"),
    (PORCH.replace('type = "integer"', 'type = "float"'),
     '(porch_light) parameters.properties.minutes.type = "float": must be one of string, '
     'number, integer, boolean'),
    (PORCH.replace('enum = ["on", "off"]', 'enum = ["on", 1]'),
     '(porch_light) parameters.properties.state.enum = ["on", 1]: must be a non-empty list of '
     'string values'),
    (PORCH.replace('required = ["state"]', 'required = ["colour"]'),
     "(porch_light) parameters.required: 'colour' is not in parameters.properties"),
    (PORCH.replace("timeout_s = 5", "timeout_s = 0"),
     "(porch_light) timeout_s = 0: must be a number from 0.1 to 600"),
    (PORCH.replace("timeout_s = 5", "timeout = 5"),
     "[[tools.command]] #1: unknown key 'timeout' (did you mean 'timeout_s'?)"),
    (PORCH.replace("timeout_s = 5", "retries = 5"),
     "[[tools.command]] #1: unknown key 'retries'; known: name, description, parameters, "
     "argv, timeout_s"),
    (PORCH.replace('description = "Turn the porch light on or off."', 'description = ""'),
     "(porch_light) description: must say what the command does"),
    (PORCH + PORCH, '[[tools.command]] #2 name = "porch_light": another command has this name'),
    ('[tools]\ndisabled = ["set_volum"]\n',
     "[tools] disabled: 'set_volum' is not a function (did you mean 'set_volume'?)"),
    ('[tools]\ndisabled = ["porch"]\n',
     "[tools] disabled: 'porch' is not a function; known: set_volume, change_volume, "
     "set_timer, cancel_timer, list_timers"),
    ('[tools]\ncommand = "x"\n', "[tools] command: must be [[tools.command]] tables"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_command_tables_name_the_file_the_table_and_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, "/etc/pttd/pttd.toml")
    assert str(info.value).startswith("/etc/pttd/pttd.toml: ")
    assert message in str(info.value)


SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["state"],
    "properties": {"state": {"type": "string", "enum": ["on", "off"]},
                   "minutes": {"type": "integer", "minimum": 1, "maximum": 90},
                   "level": {"type": "number"}, "quiet": {"type": "boolean"}}}


def test_good_arguments_are_normalised() -> None:
    assert validate(SCHEMA, {"state": "on", "minutes": 5.0, "level": 2, "quiet": False}) == {
        "state": "on", "minutes": 5, "level": 2, "quiet": False}


@pytest.mark.parametrize(("args", "message"), [
    ({}, "missing required argument 'state'"),
    ({"state": "dim"}, 'state = "dim": must be one of "on", "off"'),
    ({"state": "on", "colour": "red"}, "unknown argument 'colour'; this function takes: state, "
                                       "minutes, level, quiet"),
    ({"state": "on", "minutes": 2.5}, "minutes = 2.5: must be an integer"),
    ({"state": "on", "minutes": True}, "minutes = true: must be an integer"),
    ({"state": "on", "minutes": 0}, "minutes = 0: must be at least 1"),
    ({"state": "on", "minutes": 91}, "minutes = 91: must be at most 90"),
    ({"state": "on", "level": "3"}, 'level = "3": must be a number'),
    ({"state": "on", "quiet": "yes"}, 'quiet = "yes": must be a boolean'),
    ({"state": 1}, "state = 1: must be a string"),
    ([1], "the arguments must be an object"),
])
def test_bad_arguments_get_a_message_for_the_model(args: Any, message: str) -> None:
    with pytest.raises(ArgumentError) as info:
        validate(SCHEMA, args)
    assert str(info.value) == message


def test_wire_schema_is_what_the_sdk_sends() -> None:
    wire = to_wire({"type": "object", "required": ["n"], "properties": {
        "n": {"type": "integer", "enum": [1, 2]}, "s": {"type": "string", "enum": ["a"]}}})
    assert wire == {"type": "OBJECT", "required": ["n"], "properties": {
        "n": {"type": "INTEGER", "description": "(one of 1, 2)"},
        "s": {"type": "STRING", "enum": ["a"]}}}


def test_builtins_are_the_contract() -> None:
    assert tuple(b.name for b in BUILTINS) == BUILTIN_NAMES
    schemas = {b.name: b.schema for b in BUILTINS}
    assert schemas["set_volume"]["required"] == ["percent"]
    assert schemas["change_volume"]["required"] == ["delta"]
    assert schemas["set_timer"]["required"] == ["seconds"]
    assert set(schemas["set_timer"]["properties"]) == {"seconds", "label"}
    assert schemas["cancel_timer"]["required"] == [] and schemas["list_timers"]["properties"] == {}
