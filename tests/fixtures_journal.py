"""A real systemd-journald per test, in a private mount namespace (the host /run is untouched)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WITH_JOURNALD = ROOT / "tests" / "tools" / "with-journald.sh"


class Journald:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def run(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
            timeout: float = 60.0) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
        """Run argv beside a fresh journald; return the process result and the pttd entries."""
        out = self.tmp / "journal.json"
        proc = subprocess.run(["unshare", "-m", "--propagation", "private", str(WITH_JOURNALD),
                               str(out), *argv], capture_output=True, text=True, env=env,
                              timeout=timeout, cwd=ROOT)
        entries = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        return proc, [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "pttd"]

    def python(self, code: str, **kw: object) -> tuple[subprocess.CompletedProcess[str],
                                                       list[dict[str, str]]]:
        return self.run([sys.executable, "-c", code], **kw)  # type: ignore[arg-type]


@pytest.fixture
def journald(tmp_path: Path) -> Journald:
    if shutil.which("unshare") is None or not Path("/lib/systemd/systemd-journald").exists():
        pytest.fail("systemd-journald and unshare are needed: run make setup")
    return Journald(tmp_path)
