"""Logging read back from a real systemd-journald: fields, priorities, redaction, fallbacks."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from daemon import journal

KEY = "AIzaTESTkey+/with=odd&chars_0123456789"

# The key reaches the child through its environment, as in the daemon (not its command line,
# which journald records in _CMDLINE).
LOG_SOME = """
import logging, os
from urllib.parse import quote
from daemon import journal
KEY = os.environ["PTTD_TEST_KEY"]
journal.setup("debug", secrets=[KEY])
log = logging.getLogger("pttd.test")
log.debug("debug line")
log.info("turn done", extra={"PTTD_TURN": 3, "PTTD_OUTCOME": "completed", "other": "x"})
log.warning("warn line")
log.error("error with key %s inside", KEY)
try:
    raise RuntimeError("boom " + quote(KEY, safe=""))
except RuntimeError:
    log.exception("failed")
logging.getLogger("websockets.client").warning("lib says %s", KEY)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PTTD_TEST_KEY": KEY}


def test_entries_reach_real_journald_with_fields_and_priorities(journald) -> None:
    proc, entries = journald.python(LOG_SOME, env=_env())
    assert proc.returncode == 0, proc.stderr
    by_msg = {e["MESSAGE"]: e for e in entries}
    assert by_msg["debug line"]["PRIORITY"] == "7"
    assert by_msg["turn done"]["PRIORITY"] == "6"
    assert by_msg["warn line"]["PRIORITY"] == "4"
    assert by_msg["turn done"]["PTTD_TURN"] == "3"
    assert by_msg["turn done"]["PTTD_OUTCOME"] == "completed"
    assert "OTHER" not in by_msg["turn done"]
    assert by_msg["turn done"]["LOGGER"] == "pttd.test"
    assert all(e["SYSLOG_IDENTIFIER"] == "pttd" for e in entries)
    assert by_msg["error with key [REDACTED] inside"]["PRIORITY"] == "3"
    assert proc.stderr == ""


def test_key_never_reaches_the_journal_in_any_form(journald) -> None:
    proc, entries = journald.python(LOG_SOME, env=_env())
    text = "\n".join(str(v) for e in entries for v in e.values()) + proc.stderr
    assert len(entries) >= 6
    for form in journal.secret_forms(KEY):
        assert form not in text
    assert "boom [REDACTED]" in text
    assert "lib says [REDACTED]" in text


def test_level_filters_debug(journald) -> None:
    _, entries = journald.python(
        "import logging\nfrom daemon import journal\njournal.setup('info')\n"
        "logging.getLogger('pttd.x').debug('hidden')\nlogging.getLogger('pttd.x').info('shown')")
    messages = [e["MESSAGE"] for e in entries]
    assert "shown" in messages and "hidden" not in messages


def test_secret_forms_cover_raw_base64_and_url_encoding() -> None:
    forms = journal.secret_forms(KEY)
    assert KEY in forms
    assert quote(KEY, safe="") in forms
    assert base64.b64encode(KEY.encode()).decode() in forms
    assert base64.urlsafe_b64encode(KEY.encode()).decode().rstrip("=") in forms


def test_stderr_fallback_is_one_line_per_record(tmp_path: Path) -> None:
    code = ("import logging\nfrom daemon import journal\n"
            "journal.setup('info', use_journal=False)\n"
            "try:\n    1/0\nexcept ZeroDivisionError:\n"
            "    logging.getLogger('pttd.x').exception('division', extra={'PTTD_TURN': 2})\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "error" in lines[0] and "pttd.x: division" in lines[0]
    assert "PTTD_TURN=2" in lines[0] and "ZeroDivisionError" in lines[0]


def test_stale_journal_socket_is_not_taken_for_journald(tmp_path: Path) -> None:
    stale = tmp_path / "socket"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(stale))
    sock.close()  # the file stays, nobody listens: the trap systemd-python falls into
    assert stale.exists()
    assert journal.journald_available(str(stale)) is False
    assert journal.journald_available(str(tmp_path / "missing")) is False


# Runs in a private mount namespace with its own tmpfs on /run/systemd: the journal socket at its
# fixed path is ours, first listening, then left behind stale as by a journald that went away.
VANISHING = """
import logging, socket, sys
from daemon import journal
listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
listener.bind(journal.JOURNAL_SOCKET)
listener.settimeout(5)
journal.setup("info")
log = logging.getLogger("pttd.t")
log.info("first", extra={"PTTD_TURN": 1})
print(listener.recv(65536).decode())
listener.close()
log.info("second")
journal.setup("info")
log.info("third")
print("handler", type(logging.getLogger().handlers[0]).__name__)
"""


def test_journald_vanishing_then_stale_socket_falls_back_to_stderr() -> None:
    if shutil.which("unshare") is None:
        pytest.fail("unshare is needed: run make setup")
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         'mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd && '
         'mkdir /run/systemd/journal && exec "$0" -c "$1"', sys.executable, VANISHING],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    *datagram, handler = proc.stdout.strip().splitlines()
    assert handler == "handler StreamHandler"
    for line in ("MESSAGE=first", "PRIORITY=6", "SYSLOG_IDENTIFIER=pttd", "PTTD_TURN=1"):
        assert line in datagram
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0].endswith("pttd.t: second") and lines[1].endswith("pttd.t: third")
