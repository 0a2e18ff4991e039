"""Logging: to journald with structured PTTD_* fields under systemd, else one line per record on
stderr. A last-line-of-defence filter redacts the API key, in every form it could take, from
every record before any handler sees it."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterable
from urllib.parse import quote

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "pttd"
REDACTED = "[REDACTED]"
ROOT = "pttd"

# logging level -> syslog priority, as journald expects in PRIORITY=
_PRIORITY = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
             (logging.INFO, 6), (logging.DEBUG, 7))


def priority(levelno: int) -> int:
    for level, prio in _PRIORITY:
        if levelno >= level:
            return prio
    return 7


def fields(record: logging.LogRecord) -> dict[str, str]:
    """The record's structured fields: every `extra=` key that starts with PTTD_."""
    return {k: str(v) for k, v in record.__dict__.items() if k.startswith("PTTD_")}


def secret_forms(secret: str) -> list[str]:
    """The key as it could show up in text: raw, URL-encoded, and base64 in both alphabets."""
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote(secret)}
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        text = enc(raw).decode()
        forms.update((text, text.rstrip("=")))
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


class RedactFilter(logging.Filter):
    """Replaces any form of a secret in the message, the exception text and PTTD_* fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.forms: list[str] = []
        for s in secrets:
            if s:
                self.forms += secret_forms(s)

    def _clean(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.forms:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not take the log line with it
            message = f"{record.msg!r} {record.args!r}"
        cleaned = self._clean(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
            record.exc_info = None
        for key, value in fields(record).items():
            setattr(record, key, self._clean(value))
        return True


class JournalHandler(logging.Handler):
    """Native journald protocol through systemd-python, with only our own fields attached."""

    def __init__(self, fallback: logging.Handler) -> None:
        super().__init__()
        from systemd import journal

        self._send = journal.send
        self._fallback = fallback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            self._send(message, PRIORITY=str(priority(record.levelno)),
                       SYSLOG_IDENTIFIER=IDENTIFIER, LOGGER=record.name,
                       THREAD_NAME=record.threadName or "", CODE_FILE=record.pathname,
                       CODE_LINE=record.lineno, CODE_FUNC=record.funcName, **fields(record))
        except OSError:
            # journald went away (restart, stale socket): this line goes to stderr instead.
            self._fallback.handle(record)


class LineFormatter(logging.Formatter):
    """One line per record: exceptions folded onto it, structured fields appended."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname.lower():7} " \
               f"{record.name}: {record.getMessage()}"
        extra = fields(record)
        if extra:
            line += " [" + " ".join(f"{k}={v}" for k, v in extra.items() if v != "") + "]"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += " | " + record.exc_text.replace("\n", " | ")
        return line


def journald_available(path: str = JOURNAL_SOCKET) -> bool:
    """True only when something listens on the journal socket (a stale file is not enough)."""
    if not os.path.exists(path):
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(path)
    except OSError:
        return False
    finally:
        sock.close()
    return True


def setup(level: str = "info", secrets: Iterable[str] = (), *,
          use_journal: bool | None = None) -> None:
    """Configure logging; calling it again replaces the previous setup.

    The handler sits on the root logger so library records (websockets, asyncio) pass the same
    redaction filter; the `pttd` tree alone gets the configured level, libraries warnings only.
    """
    logger = logging.getLogger()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        with contextlib.suppress(Exception):
            handler.close()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(LineFormatter())
    if use_journal is None:
        use_journal = journald_available()
    handler: logging.Handler = JournalHandler(stderr) if use_journal else stderr
    redact = RedactFilter(secrets)
    handler.addFilter(redact)
    stderr.addFilter(redact)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    set_level(level)
    # Library loggers may print request headers (the key among them) at debug: keep them quiet.
    for name in ("websockets", "asyncio", "gpiozero"):
        logging.getLogger(name).setLevel(logging.WARNING)


def set_level(level: str) -> None:
    logging.getLogger(ROOT).setLevel(level.upper())
