"""The system check's verdict (tests/system/summary.py): what makes `make system-check` fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = ROOT / "tests" / "system" / "summary.py"


def _verdict(tmp_path: Path, steps: list[tuple[str, str]]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "steps.jsonl"
    path.write_text("".join(json.dumps({"step": name, "result": result, "seconds": 1.0,
                                        "note": "n"}) + "\n" for name, result in steps))
    return subprocess.run([sys.executable, str(SUMMARY), str(path), "60"], capture_output=True,
                          text=True, timeout=30)


def test_passes_with_pass_na_and_known_steps_and_the_second_boot(tmp_path: Path) -> None:
    res = _verdict(tmp_path, [("boot", "pass"), ("gpio-sim", "n/a"), ("speaker", "known"),
                              ("after reboot: back", "pass")])
    assert res.returncode == 0, res.stdout
    assert "speaker" in res.stdout and "known" in res.stdout


def test_a_failed_or_skipped_step_fails_it(tmp_path: Path) -> None:
    for bad in ("FAIL", "not run"):
        res = _verdict(tmp_path, [("boot", "pass"), ("turns", bad), ("after reboot: x", "pass")])
        assert res.returncode == 1 and "failed: turns" in res.stdout


def test_no_second_boot_fails_it(tmp_path: Path) -> None:
    res = _verdict(tmp_path, [("boot", "pass"), ("reboot", "pass")])
    assert res.returncode == 1 and "did not come back from its reboot" in res.stdout


def test_no_steps_at_all_fails_it(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(SUMMARY), str(tmp_path / "absent"), "5"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "recorded no steps" in res.stdout
