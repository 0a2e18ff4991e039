"""Realtime scheduling of the audio-path threads, read back from the kernel's own records."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fixtures_daemon import DaemonRig

from daemon.devkit.emulator import EmulatorOptions, EmulatorThread
from daemon.devkit.simsink import SimSink
from hw import realtime

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534


def scheduling(pid: int, tid: int) -> tuple[str, int, int, str]:
    """(thread name, policy, realtime priority, CPUs allowed) from /proc/PID/task/TID."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()  # fields[0] is field 3 of proc(5)
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    cpus = re.search(r"^Cpus_allowed_list:\s*(\S+)$", status, re.M)
    assert cpus is not None
    return name, int(fields[41 - 3]), int(fields[40 - 3]), cpus.group(1)


def _root_may_claim() -> None:
    probe = subprocess.run([sys.executable, "-c", "import os; os.sched_setscheduler(0, "
                            "os.SCHED_RR, os.sched_param(1))"], capture_output=True)
    if os.geteuid() != 0 or probe.returncode != 0:
        pytest.skip("this machine refuses realtime scheduling even to root (no CAP_SYS_NICE)")


def test_a_claimed_thread_is_round_robin_and_its_children_are_not() -> None:
    _root_may_claim()
    seen: dict[str, tuple[int, int]] = {}

    def child() -> None:
        seen["child"] = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
        seen["child cpus"] = (len(os.sched_getaffinity(0)), min(os.sched_getaffinity(0)))

    def claimer() -> None:
        seen["claimed"] = (int(realtime.claim("test")), 0)
        seen["self"] = (os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK,
                        os.sched_getparam(0).sched_priority)
        seen["self cpus"] = (len(os.sched_getaffinity(0)), min(os.sched_getaffinity(0)))
        t = threading.Thread(target=child)
        t.start()
        t.join()

    t = threading.Thread(target=claimer)
    t.start()
    t.join()
    assert seen["claimed"] == (1, 0)
    assert seen["self"] == (os.SCHED_RR, realtime.PRIORITY)
    assert seen["child"] == (os.SCHED_OTHER, 0)
    assert seen["self cpus"] == seen["child cpus"] == (1, max(os.sched_getaffinity(0)))
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the test's own thread is untouched


def _claim_as_nobody(*prefix: str) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("prlimit") is None:
        pytest.skip("needs root and util-linux's setpriv and prlimit to run as an ordinary user")
    code = ("import logging, sys; logging.basicConfig(stream=sys.stdout, format='%(message)s');"
            "from hw import realtime; print('claimed', realtime.claim('the event loop'))")
    return subprocess.run([*prefix, "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                           "--clear-groups", sys.executable, "-c", code], cwd=ROOT,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=30)


def test_an_ordinary_user_is_refused_with_the_way_to_grant_it() -> None:
    proc = _claim_as_nobody("prlimit", "--rtprio=0:0")
    assert proc.returncode == 0, proc.stderr
    assert "claimed False" in proc.stdout
    assert re.search(r"the event loop runs at normal priority \(realtime scheduling refused: "
                     r"Operation not permitted\).*LimitRTPRIO=1", proc.stdout), proc.stdout


def test_the_unit_grants_the_priority_and_lets_the_call_through() -> None:
    unit = (ROOT / "systemd" / "pttd.service").read_text()
    assert re.search(rf"^LimitRTPRIO={realtime.PRIORITY}$", unit, re.M)
    filters = re.findall(r"^SystemCallFilter=(.*)$", unit, re.M)
    assert filters[-1] == "sched_setscheduler sched_setaffinity", "allowed after @resources"
    assert not re.search(r"^RestrictRealtime=yes$", unit, re.M)


def test_the_units_rtprio_limit_is_enough_for_an_ordinary_user() -> None:
    grant = ("prlimit", f"--rtprio={realtime.PRIORITY}:{realtime.PRIORITY}")
    if subprocess.run([*grant, "true"], capture_output=True).returncode != 0:
        pytest.skip("root may not raise RLIMIT_RTPRIO here (no CAP_SYS_RESOURCE)")
    proc = _claim_as_nobody(*grant)
    assert proc.returncode == 0, proc.stderr
    assert "claimed True" in proc.stdout, proc.stdout
    assert "the event loop: SCHED_RR priority 1" in proc.stdout


def test_the_daemon_runs_its_loop_and_playback_round_robin_and_the_rest_normally(
        tmp_path: Path, counter_sink: SimSink) -> None:
    _root_may_claim()
    with EmulatorThread(EmulatorOptions()) as emu, DaemonRig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        assert d.proc is not None
        pid = d.proc.pid
        threads = {tid: scheduling(pid, tid) for tid in map(int, os.listdir(f"/proc/{pid}/task"))}
    everywhere = Path("/proc/self/status").read_text().split("Cpus_allowed_list:")[1].split()[0]
    audio = str(max(os.sched_getaffinity(0)))
    assert threads[pid][1:] == (os.SCHED_RR, realtime.PRIORITY, audio)
    others = sorted(entry for tid, entry in threads.items() if tid != pid)
    names = [name for name, *_ in others]
    assert names.count("pttd-playback") == 1 and names.count("pttd-capture") == 1, names
    assert len(others) > 2, "the pulse plugin's threads are there too"
    for name, policy, prio, cpus in others:
        if name == "pttd-playback":
            assert (policy, prio, cpus) == (os.SCHED_RR, realtime.PRIORITY, audio)
        else:
            assert (policy, prio) == (os.SCHED_OTHER, 0), (name, policy, prio)
        if name == "pttd-capture":
            assert cpus == everywhere, "capture keeps every CPU"
