"""The control socket: one line in (`press`, `release`, `status`, `volume N`, `timers`,
`timer DURATION [LABEL]`, `timer cancel [LABEL]`), one JSON line out.

For integrations (Home Assistant, a keyboard shortcut) and black-box tests. A misbehaving
client can cost the daemon nothing: lines are capped, idle clients are dropped after a timeout,
and the number of clients at once is bounded, so the speaker stays responsive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("pttd.control")

MAX_LINE = 256
READ_TIMEOUT_S = 5.0
MAX_CLIENTS = 16
SOCKET_MODE = 0o660
DEFAULT_SOCKET = "/run/pttd/control.sock"
COMMANDS = ("press", "release", "status", "volume", "timers", "timer")

Handler = Callable[[str], dict[str, Any]]


class ControlError(Exception):
    """The control socket cannot be set up; the message says why."""


def _answering(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


class ControlServer:
    """Serves the control socket: each line is handed to `handler`, its dict goes back as JSON.

    The socket is where `pttd press|status|...`, integrations and black-box tests reach the
    running daemon, so the server refuses a path that is not a socket or that another daemon
    still answers on, and opens the socket to its owner and group only:

        server = ControlServer("/run/pttd/control.sock", lambda line: {"ok": True, "got": line})
        await server.start()
        ...
        await server.close()
    """

    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._slots = asyncio.Semaphore(MAX_CLIENTS)
        self._clients: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        p = Path(self.path)
        if not p.parent.exists():
            p.parent.mkdir(mode=0o750, parents=True)
        if p.exists() or p.is_symlink():
            if not stat.S_ISSOCK(p.lstat().st_mode):
                raise ControlError(f"control socket {p}: exists and is not a socket; "
                                   "remove it or set [control] socket")
            if _answering(self.path):
                raise ControlError(f"control socket {p}: another pttd is already running")
            p.unlink()
        old = os.umask(0o117)
        try:
            self._server = await asyncio.start_unix_server(self._client, path=self.path,
                                                           limit=MAX_LINE * 2)
        finally:
            os.umask(old)
        os.chmod(self.path, SOCKET_MODE)
        log.debug("control socket at %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            if self._slots.locked():
                # Take the client's line first: a socket closed with input unread resets the
                # connection, and the client's read fails before it sees this answer.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(reader.readuntil(b"\n"), READ_TIMEOUT_S)
                await self._reply(writer, {"ok": False, "error": "busy: too many clients"})
                return
            async with self._slots:
                await self._serve(reader, writer)
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), READ_TIMEOUT_S)
        except TimeoutError:
            return
        except asyncio.IncompleteReadError as exc:
            line = exc.partial
            if not line:
                return
        except asyncio.LimitOverrunError:
            await self._reply(writer, {"ok": False, "error": f"line longer than {MAX_LINE} "
                                                             "bytes"})
            return
        except ConnectionError:
            return
        if len(line) > MAX_LINE:
            await self._reply(writer, {"ok": False, "error": f"line longer than {MAX_LINE} bytes"})
            return
        # The verb is matched in any case; what follows it (a timer's label) is kept as typed.
        verb, _, rest = line.decode("utf-8", "replace").strip().partition(" ")
        command = " ".join((verb.lower(), *rest.split()))
        if verb.lower() not in COMMANDS:
            shown = command[:40].encode("unicode_escape").decode()
            await self._reply(writer, {"ok": False, "error": f"unknown command {shown!r}; "
                                                             f"use {', '.join(COMMANDS)}"})
            return
        try:
            answer = self._handler(command)
        except Exception as exc:
            log.exception("control command %r failed", command)
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        # One loop pass first: what a press or release set off (activityStart/End on the
        # socket) goes out before the answer to whoever pressed.
        await asyncio.sleep(0)
        await self._reply(writer, answer)

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, answer: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(json.dumps(answer).encode() + b"\n")
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT_S)


def default_socket() -> str:
    """$PTTD_CONTROL_SOCKET, else the config file's [control] socket, else the default."""
    env = os.environ.get("PTTD_CONTROL_SOCKET")
    if env:
        return env
    import config

    try:
        return config.load().control.socket
    except config.ConfigError:
        return DEFAULT_SOCKET


def request(path: str, command: str, timeout: float = 5.0) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def client_main(args: argparse.Namespace) -> int:
    path = args.socket or default_socket()
    try:
        answer = request(path, " ".join((args.command, *getattr(args, "words", ()))))
    except FileNotFoundError:
        print(f"pttd {args.command}: no daemon listening at {path} (is pttd running? "
              "`systemctl status pttd`)", file=sys.stderr)
        return 1
    except PermissionError:
        print(f"pttd {args.command}: permission denied on {path}: run as root or a member "
              "of the pttd group", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"pttd {args.command}: {path}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0 if answer.get("ok") else 1
