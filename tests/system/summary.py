"""The system check's table, from the steps the VM recorded: step, result, seconds, note.

A result is pass, FAIL, not run, n/a (the VM cannot offer it) or known (a defect this check
found and reports, owned elsewhere; the note says what and how it was seen).

    python3 tests/system/summary.py results/steps.jsonl TOTAL_SECONDS
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: Path, total: int) -> int:
    steps = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    if not steps:
        print("system-check: the VM recorded no steps (it did not boot, or the check unit "
              "failed to start: see the console below)")
        return 1
    width = max(len(s["step"]) for s in steps)
    print(f"\n{'step':<{width}}  result   seconds  note")
    for s in steps:
        print(f"{s['step']:<{width}}  {s['result']:<7} {s['seconds']:>8.1f}  {s['note']}")
    failed = [s["step"] for s in steps if s["result"] not in ("pass", "n/a", "known")]
    if not any(s["step"].startswith("after reboot") for s in steps):
        failed.append("the VM did not come back from its reboot")
    print(f"\n{'total (host: image, boot, both boots, poweroff)':<{width}}  "
          f"{'FAIL' if failed else 'pass':<7} {total:>8.1f}")
    if failed:
        print(f"system-check: failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
