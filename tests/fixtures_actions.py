"""Local-actions test helpers: an emulator that makes scripted function calls (`tools_emu`,
parametrized indirectly with the turns), and short ways to drive and read `pttd run`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures_daemon import ROOT, DaemonRig

from daemon.devkit.emulator import EmulatorOptions, EmulatorThread
from daemon.devkit.simsink import SimSink
from daemon.devkit.tool_script import ScriptedCall, ScriptedTurn

QUIET = "[earcons]\nenabled = false\n"


def say(*calls: ScriptedCall, heard: str = "") -> ScriptedTurn:
    return ScriptedTurn(heard or "do it", calls)


def turn(d: DaemonRig) -> dict[str, Any]:
    """One press-to-talk turn; the status once it has ended."""
    done = sum(d.status().get("outcomes", {}).values())
    d.control("press")
    time.sleep(0.4)
    d.control("release")
    d.wait(lambda: sum(d.status().get("outcomes", {}).values()) == done + 1, 20, "the turn")
    return d.status()


def responses(emu: EmulatorThread) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in emu.call(lambda e: list(e.tools.responses))}


def cli(d: DaemonRig, *words: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-m", "daemon", *words, "--socket",
                           str(d.socket_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=20)
    return proc.returncode, json.loads(proc.stdout or proc.stderr)


@pytest.fixture
def tools_emu(request: pytest.FixtureRequest) -> Iterator[EmulatorThread]:
    with EmulatorThread(EmulatorOptions(tool_turns=request.param)) as emu:
        yield emu


def again(tmp: Path, sink: SimSink, emu: EmulatorThread) -> DaemonRig:
    """The daemon started anew with the first one's state directory."""
    (tmp / "again").mkdir()
    return DaemonRig(tmp / "again", sink, emu, config=QUIET,
                     env={"STATE_DIRECTORY": str(tmp / "state")})


def peak(pcm: bytes) -> int:
    return int(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)).max(initial=0))


