"""Configured commands and bad calls through `pttd run`: the emulator makes the calls, real
processes run, and every call gets exactly one answer (or, when cancelled, none)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fixtures_actions import QUIET, responses, say, turn
from fixtures_daemon import TEST_KEY, DaemonRig

from daemon.devkit.emulator import EmulatorThread
from daemon.devkit.simsink import SimSink
from daemon.devkit.tool_script import ScriptedCall


def commands_config(tmp: Path) -> str:
    note = tmp / "note.sh"
    note.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp / "argv.txt"}\necho noted\n')
    slow = tmp / "slow.sh"
    slow.write_text(f"#!/bin/sh\necho $$ > {tmp}/$1.pid\nsleep 30\n")
    for script in (note, slow):
        script.chmod(0o755)
    return QUIET + f'''
[tools]
disabled = ["set_volume"]
[[tools.command]]
name = "note"
description = "Write a note."
argv = ["{note}", "{{text}}", "--times", "{{count}}", "{{urgent}}"]
[tools.command.parameters]
required = ["text"]
[tools.command.parameters.properties.text]
type = "string"
[tools.command.parameters.properties.count]
type = "integer"
minimum = 1
[tools.command.parameters.properties.urgent]
type = "boolean"
[[tools.command]]
name = "slow"
description = "Takes its time."
argv = ["{slow}", "{{tag}}"]
timeout_s = 0.5
[tools.command.parameters.properties.tag]
type = "string"
[[tools.command]]
name = "fails"
description = "Always fails."
argv = ["/bin/sh", "-c", "echo broken >&2; exit 2"]
[[tools.command]]
name = "quick"
description = "Says hello."
argv = ["/bin/echo", "hello"]
'''


FLOOD = 30


@pytest.mark.parametrize("tools_emu", [(
    say(ScriptedCall("note", {"text": "milk; $(reboot) *", "count": 2, "urgent": True})),
    say(ScriptedCall("slow", {"tag": "timeout"}), ScriptedCall("fails"),
        ScriptedCall("slow", {"tag": "cancel"}, cancel_after_s=0.3)),
    say(ScriptedCall("set_volume", {"percent": 10}), ScriptedCall("reboot"),
        ScriptedCall("note", {"text": 5}), ScriptedCall("note", {"count": 1})),
    say(*[ScriptedCall("quick") for _ in range(FLOOD)]),
)], indirect=True)
def test_commands_run_with_their_arguments_and_bad_calls_get_errors(
        tmp_path: Path, counter_sink: SimSink, tools_emu: EmulatorThread) -> None:
    with DaemonRig(tmp_path, counter_sink, tools_emu, config=commands_config(tmp_path),
                   journal=True) as d:
        d.wait_ready()
        turn(d)
        assert (tmp_path / "argv.txt").read_text() == "milk; $(reboot) *\n--times\n2\ntrue\n"
        turn(d)
        time.sleep(0.3)
        turn(d)
        turn(d)
        assert d.status()["outcomes"] == {"completed": 4}
        assert d.stop()[0] == 0
    got = responses(tools_emu)
    assert got["call-1"]["response"] == {"output": {"exit_status": 0, "output": "noted\n"}}
    assert got["call-1"]["name"] == "note" and got["call-1"]["scheduling"] == "WHEN_IDLE"
    assert "did not finish within 0.5 seconds" in got["call-2"]["response"]["error"]
    assert got["call-3"]["response"] == {"error": "the command failed (exit status 2)",
                                         "exit_status": 2, "output": "broken\n"}
    # The cancelled call got no answer, and its process is gone.
    assert "call-4" not in got and tools_emu.call(lambda e: e.tools.cancelled) == ["call-4"]
    for tag in ("timeout", "cancel"):
        pid = int((tmp_path / f"{tag}.pid").read_text())
        assert not Path(f"/proc/{pid}").exists()
    assert got["call-5"]["response"] == {"error": "set_volume is switched off on this speaker"}
    assert got["call-6"]["response"]["error"].startswith("there is no function 'reboot'")
    assert got["call-7"]["response"] == {"error": 'bad arguments: text = 5: must be a string'}
    assert got["call-8"]["response"] == {"error": "bad arguments: missing required argument "
                                                  "'text'"}
    # A flood: every call answered exactly once, those over the limits with "busy".
    flood = [r for r in tools_emu.call(lambda e: list(e.tools.responses))
             if r["name"] == "quick"]
    assert sorted(int(r["id"][5:]) for r in flood) == list(range(9, 9 + FLOOD))
    busy = [r for r in flood if "busy" in r["response"].get("error", "")]
    assert len(busy) == FLOOD - 20
    # Declared: the commands, not the disabled built-in.
    declared = tools_emu.sessions[0].setup["tools"][0]["functionDeclarations"]
    names = [f["name"] for f in declared]
    assert names == ["change_volume", "set_timer", "cancel_timer", "list_timers", "note",
                     "slow", "fails", "quick"]
    assert declared[4]["parameters"]["properties"]["count"] == {"type": "INTEGER", "minimum": 1}
    # One journal line per call, with its outcome; the cancelled one says so.
    records = [e for e in d.journal() if "PTTD_TOOL" in e]
    assert len(records) == 8 + FLOOD
    outcome = {e["PTTD_TOOL_ID"]: e["PTTD_TOOL_OUTCOME"] for e in records}
    assert [outcome[f"call-{i}"] for i in range(1, 6)] == ["ok", "error", "error", "cancelled",
                                                          "error"]
    assert all(int(e["PTTD_TOOL_MS"]) < 500 for e in records
               if e["PTTD_TOOL"] not in ("note", "slow", "fails", "quick"))
    text = "\n".join(str(v) for e in d.journal() for v in e.values()) + d.stderr
    assert TEST_KEY not in text
