"""Soak: many press/release cycles through `pttd run` with random hold times, random barge-ins
and about 10 % injected faults. A short one runs in `make test`; `make soak` runs 1,000 turns
(PTTD_SOAK_TURNS overrides) with holds of 0.1-8 s."""

from __future__ import annotations

import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fixtures_daemon import DaemonRig

from daemon.devkit.emulator import EmulatorOptions, EmulatorThread
from daemon.devkit.simsink import SimSink

# (fault, arguments, replaces the session now): a fault that replaces the session is waited
# out before the next press (a press while offline is answered with the error earcon and is no
# turn); the others hit the next turn itself.
FAULTS: list[tuple[str, dict[str, object], bool]] = [
    ("close", {"code": 1011}, True),
    ("close", {"code": 1008, "reason": "Operation is not implemented, or supported, or enabled."},
     True),
    ("go_away", {"time_left_s": 1.0}, True),
    ("close", {"code": 1011, "mid_reply": True}, False),
    ("malformed", {}, False),
    ("unknown_only", {}, False),
    ("bad_base64", {}, False),
    ("odd_pcm", {}, False),
]


def proc_figures(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    tasks = os.listdir(f"/proc/{pid}/task")
    names = Counter(Path(f"/proc/{pid}/task/{t}/comm").read_text().strip() for t in tasks)
    return {"rss_kb": rss, "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": len(tasks),
            "thread_names": dict(names)}


def soak(tmp_path: Path, sink: SimSink, turns: int, hold: tuple[float, float],
         seed: int = 1, reply_max_ms: int = 0, progress_every: int = 0) -> dict[str, object]:
    rng = random.Random(seed)
    with EmulatorThread(EmulatorOptions(pace="burst", reply_max_ms=reply_max_ms)) as emu:
        d = DaemonRig(tmp_path, sink, emu, config="[earcons]\nenabled = false\n")
        text = d.config_path.read_text().replace('level = "debug"', 'level = "info"')
        d.config_path.write_text(text)
        with d:
            d.wait_ready()
            assert d.proc is not None
            pid = d.proc.pid

            def outcomes() -> dict[str, int]:
                return d.status().get("outcomes", {})

            def ended() -> int:
                return sum(outcomes().values())

            def turn(hold_s: float, barge_in: bool) -> None:
                n = ended()
                d.control("press")
                time.sleep(hold_s)
                d.control("release")
                if barge_in:
                    d.wait(lambda: d.status().get("state") != "thinking", 20, "a reply")
                    d.control("press")
                    time.sleep(min(hold_s, 0.3))
                    d.control("release")
                    n += 1
                d.wait(lambda: ended() > n, 30, "the turn to end")

            for _ in range(3):                                      # warm-up
                turn(0.3, False)
            def settled() -> dict[str, int]:
                # The daemon closes a control connection just after answering it: let the
                # last one go before counting fds.
                time.sleep(0.5)
                return proc_figures(pid)

            start = {**settled(), "tasks": d.status()["tasks"]}
            began = time.monotonic()
            base = ended()
            warm = outcomes()
            slowest = 0.0
            faults = 0
            presses = 0
            while presses < turns:
                fault: tuple[str, dict[str, object], bool] | None = None
                t0 = time.monotonic()
                if rng.random() < 0.10:
                    fault = rng.choice(FAULTS)
                    name, kw, replaces = fault
                    sessions = emu.call(lambda e: len(e.sessions))
                    emu.inject(name, **kw)
                    faults += 1
                    if replaces:
                        d.wait(lambda n=sessions: emu.call(lambda e: len(e.sessions)) > n
                               and d.status().get("session") == "ready", 30, "a new session")
                        d.wait_state("idle", timeout=30)
                barge = presses + 2 <= turns and rng.random() < 0.10
                turn(rng.uniform(*hold), barge)
                presses += 2 if barge else 1
                d.wait_state("idle", timeout=30)
                if fault is not None:
                    slowest = max(slowest, time.monotonic() - t0)
                if progress_every and presses // progress_every != (presses - 1) // progress_every:
                    elapsed = time.monotonic() - began
                    print(f"[soak] {presses}/{turns} turns, {elapsed / 60:.1f} min, about "
                          f"{elapsed / presses * (turns - presses) / 60:.0f} min to go, "
                          f"outcomes {outcomes()}", flush=True)
            end = settled()
            st = d.status()
            end["tasks"] = st["tasks"]
            result = {
                "turns": ended() - base,
                "outcomes": {k: v - warm.get(k, 0) for k, v in outcomes().items()
                             if v - warm.get(k, 0)},
                "faults": faults,
                "reconnects": st["reconnects"], "start": start, "end": end,
                "slowest_recovery_s": round(slowest, 2), "alive": d.proc.poll() is None,
                "capture_to_send_max_ms": st["stats"]["capture_to_send_ms"].get("max", 0.0),
                "traceback": "Traceback" in d.stderr,
                "failures": dict(Counter(re.findall(r"turn \d+ failed: ([^,]+),", d.stderr))),
            }
            assert d.stop()[0] == 0
    return result


def report(result: dict[str, object], printer: Callable[[str], None] = print) -> None:
    start, end = result["start"], result["end"]
    assert isinstance(start, dict) and isinstance(end, dict)
    printer(f"\nsoak: {result['turns']} turns, outcomes {result['outcomes']}, "
            f"{result['faults']} faults injected, {result['reconnects']} reconnects, "
            f"slowest recovery {result['slowest_recovery_s']} s")
    printer(f"      failed turns by reason: {result['failures'] or 'none'}")
    printer(f"      RSS {start['rss_kb'] / 1024:.1f} -> {end['rss_kb'] / 1024:.1f} MB, "
            f"fds {start['fds']} -> {end['fds']}, threads {start['threads']} -> "
            f"{end['threads']}, asyncio tasks {start['tasks']} -> {end['tasks']}")


def check(result: dict[str, object], turns: int) -> None:
    outcomes = result["outcomes"]
    assert isinstance(outcomes, dict)
    kinds = {k.split(":")[0] for k in outcomes}
    assert kinds <= {"completed", "interrupted", "failed"}
    assert result["turns"] == turns == sum(outcomes.values())
    assert result["alive"] and not result["traceback"]
    start, end = result["start"], result["end"]
    assert isinstance(start, dict) and isinstance(end, dict)
    assert end["rss_kb"] - start["rss_kb"] < 2048
    # Each frame goes out within a second of its capture period (a period timed against an
    # earlier turn shows up here as seconds).
    assert result["capture_to_send_max_ms"] < 1000
    for key in ("fds", "threads", "tasks"):
        assert end[key] == start[key], (key, start, end)


def test_short_soak(tmp_path: Path, counter_sink: SimSink) -> None:
    result = soak(tmp_path, counter_sink, turns=30, hold=(0.1, 0.6))
    report(result)
    check(result, 30)


@pytest.mark.slow
def test_full_soak(tmp_path: Path, counter_sink: SimSink) -> None:
    turns = int(os.environ.get("PTTD_SOAK_TURNS", "1000"))
    # Replies are cut to 0.6 s (long enough to barge into) so 1,000 turns take about 80 min.
    result = soak(tmp_path, counter_sink, turns=turns, hold=(0.1, 8.0), seed=2,
                  reply_max_ms=600, progress_every=50)
    report(result)
    check(result, turns)
