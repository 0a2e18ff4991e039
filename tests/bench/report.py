"""The bench's verdict: one table of medians (min-max) per figure for both clients, the budget
each pttd figure is held to, and where each client's CPU goes, per thread.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Run:
    client: str
    figures: dict[str, float] = field(default_factory=dict)
    # window ("idle", "turns", or the turns' "held" and "replying") -> thread -> % of one core
    threads: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Budget:
    """pttd's median must be at most `limit`, at most `ratio` times the reference's, and at
    most `over` above the reference's (each only where given)."""

    limit: float | None = None
    ratio: float | None = None
    over: float | None = None

    def check(self, pttd: float, reference: float | None) -> tuple[bool, str]:
        ok, terms = True, []
        if self.limit is not None:
            ok &= pttd <= self.limit
            terms.append(f"<= {self.limit:g}")
        if self.ratio is not None:
            ok &= reference is not None and pttd <= self.ratio * reference
            terms.append(f"<= {self.ratio:g}x reference")
        if self.over is not None:
            ok &= reference is not None and pttd <= reference + self.over
            terms.append(f"<= reference + {self.over:g}")
        return ok, f"{'PASS' if ok else 'FAIL'} ({', '.join(terms)})"


# Issue 23's budgets, at the shipped defaults, and the earlier per-path ones (1 ms at p99).
BUDGETS = {
    "stream_cpu_pct": Budget(limit=1.0, ratio=0.4),
    "idle_cpu_pct": Budget(limit=0.2),
    "peak_rss_mb": Budget(limit=50.0),
    "start_ready_ms": Budget(limit=400.0),
    "release_to_activity_end_ms.p50": Budget(limit=15.0),
    "release_to_activity_end_ms.p99": Budget(limit=30.0),
    "first_reply_sound_ms": Budget(over=10.0),
    "input_marker_ms": Budget(limit=60.0),
    "reply_marker_ms": Budget(over=10.0),
    "barge_in_silence_ms": Budget(limit=20.0),
    "jitter_gaps": Budget(limit=0.0),
    "steady_gaps": Budget(limit=0.0),
    "capture_to_send_ms.p99": Budget(limit=1.0),
    "receive_to_alsa_ms.p99": Budget(limit=1.0),
    "press_to_activity_start_ms.p99": Budget(limit=1.0),
    "tail_to_activity_end_ms.p99": Budget(limit=1.0),
}
LABELS = {
    "stream_cpu_pct": "CPU while taking turns, % of one core",
    "idle_cpu_pct": "CPU idle, warm session, %",
    "peak_rss_mb": "peak RSS, MB",
    "start_ready_ms": "start -> READY / setupComplete, ms",
    "turns": "turns in the streaming window",
    "release_to_activity_end_ms.p50": "release -> activityEnd p50, ms",
    "release_to_activity_end_ms.p99": "release -> activityEnd p99, ms",
    "first_reply_sound_ms": "black box: release -> first reply sound at the sink, ms",
    "input_marker_ms": "black box: input marker -> at the server, ms",
    "reply_marker_ms": "black box: reply marker due -> played by the sink, ms",
    "barge_in_silence_ms": "black box: barge-in press -> sink silent, ms",
    "jitter_gaps": "black box: audible gaps in replies arriving with +-40 ms jitter",
    "steady_gaps": "black box: audible gaps in replies arriving in real time (no added jitter)",
    "host_steal_pct": "host: CPU stolen by the hypervisor while taking turns, % of the machine",
    "host_wake_us.p50": "host: one thread waking another, p50, us (before each run)",
    "host_wake_us.p99": "host: one thread waking another, p99, us (before each run)",
    "host_python_ms": "host: a fixed pure-Python loop, ms (before each run; lower is faster)",
}


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:.3g} ({min(values):.3g}-{max(values):.3g})"


def table(runs: list[Run]) -> tuple[str, bool]:
    a = [r.figures for r in runs if r.client == "pttd"]
    b = [r.figures for r in runs if r.client == "reference"]
    keys = list(LABELS) + sorted({k for f in a for k in f} - set(LABELS))
    lines = ["| figure | pttd median (min-max) | reference median (min-max) | ratio | budget |",
             "|---|---|---|---|---|"]
    ok = True
    for key in keys:
        va = [f[key] for f in a if key in f]
        vb = [f[key] for f in b if key in f]
        ref = statistics.median(vb) if vb else None
        ratio = f"{statistics.median(va) / ref:.2f}" if va and ref else ""
        verdict = ""
        if key in BUDGETS:
            passed, verdict = BUDGETS[key].check(statistics.median(va), ref) if va else (
                False, "FAIL (not measured)")
            ok &= passed
        lines.append(f"| {LABELS.get(key, key)} | {fmt(va)} | {fmt(vb)} | {ratio} | {verdict} |")
    return "\n".join(lines), ok


def thread_table(runs: list[Run]) -> str:
    """Per window and client: each thread's median share over the runs (of those >= 0.01 %)."""
    lines = ["| window | pttd | reference |", "|---|---|---|"]
    for window in ("idle", "turns", "held", "replying"):
        cells = []
        for client in ("pttd", "reference"):
            shares: dict[str, list[float]] = {}
            for run in runs:
                if run.client == client:
                    for name, pct in run.threads.get(window, {}).items():
                        shares.setdefault(name, []).append(pct)
            medians = {name: statistics.median(v) for name, v in shares.items()}
            cells.append(", ".join(f"{name} {pct:.2f}" for name, pct in
                                   sorted(medians.items(), key=lambda kv: -kv[1]) if pct >= 0.01))
        lines.append(f"| {window} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)
