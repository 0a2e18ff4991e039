"""The control socket over a real Unix socket: the protocol, its permissions, the `pttd
press|release|status` client, and clients that misbehave (garbage, huge lines, crowds, silence)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import control
from daemon.control import ControlError, ControlServer


class Handler:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, command: str) -> dict[str, Any]:
        self.calls.append(command)
        return {"ok": True, "state": "listening" if command == "press" else "idle"}


async def ask(path: Path, data: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_commands_answer_one_json_line_and_socket_is_0660(tmp_path: Path) -> None:
    path = tmp_path / "run" / "control.sock"
    handler = Handler()

    async def main() -> None:
        server = ControlServer(str(path), handler)
        await server.start()
        try:
            assert stat.S_IMODE(path.stat().st_mode) == 0o660
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
            assert json.loads(await ask(path, b"press\n")) == {"ok": True, "state": "listening"}
            assert json.loads(await ask(path, b"STATUS\r\n"))["state"] == "idle"
            bad = json.loads(await ask(path, b"dance\n"))
            assert bad["ok"] is False and "unknown command 'dance'" in bad["error"]
        finally:
            await server.close()
        assert not path.exists()

    run(main())
    assert handler.calls == ["press", "status"]


def test_stale_socket_is_replaced_but_a_live_daemon_is_not(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()

    async def main() -> None:
        first = ControlServer(str(path), Handler())
        await first.start()
        try:
            with pytest.raises(ControlError, match="another pttd is already running"):
                await ControlServer(str(path), Handler()).start()
        finally:
            await first.close()

    run(main())
    path.write_text("not a socket")
    with pytest.raises(ControlError, match="not a socket"):
        run(ControlServer(str(path), Handler()).start())


def test_misbehaving_clients_cost_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "READ_TIMEOUT_S", 0.5)
    path = tmp_path / "c.sock"
    handler = Handler()

    async def main() -> None:
        server = ControlServer(str(path), handler)
        await server.start()
        try:
            # Clients that connect and never write, up to the limit, while others are served.
            silent = [await asyncio.open_unix_connection(str(path)) for _ in range(10)]
            assert json.loads(await ask(path, b"status\n"))["ok"] is True
            long_line = json.loads(await ask(path, b"p" * 100_000 + b"\n"))
            assert long_line["ok"] is False and "longer than" in long_line["error"]
            garbage = json.loads(await ask(path, bytes(range(256)) + b"\n"))
            assert garbage["ok"] is False
            answers = await asyncio.gather(*(ask(path, b"status\n") for _ in range(50)))
            assert all(a.endswith(b"\n") for a in answers)
            assert sum(json.loads(a)["ok"] for a in answers) >= 1
            # Silent clients are dropped after the read timeout.
            for reader, _ in silent:
                assert await asyncio.wait_for(reader.read(), 2) == b""
            assert json.loads(await ask(path, b"release\n"))["ok"] is True
        finally:
            await server.close()

    run(main())
    assert handler.calls.count("release") == 1


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600))
def test_any_bytes_get_an_answer_or_a_close_never_a_crash(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / f"f{os.getpid()}.sock"
    handler = Handler()

    async def main() -> None:
        server = ControlServer(str(path), handler)
        await server.start()
        try:
            answer = await ask(path, data)
            if answer:
                assert isinstance(json.loads(answer), dict)
            assert json.loads(await ask(path, b"status\n"))["ok"] is True
        finally:
            await server.close()

    run(main())


def test_client_main_prints_the_answer_or_says_no_daemon(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.sock"
    args = argparse.Namespace(command="status", socket=str(path))
    assert control.client_main(args) == 1
    assert "no daemon listening" in capsys.readouterr().err

    async def main() -> None:
        server = ControlServer(str(path), Handler())
        await server.start()
        try:
            rc = await asyncio.to_thread(control.client_main, args)
            assert rc == 0
        finally:
            await server.close()

    run(main())
    assert json.loads(capsys.readouterr().out)["state"] == "idle"


def test_default_socket_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTTD_CONTROL_SOCKET", "/x/env.sock")
    assert control.default_socket() == "/x/env.sock"
    monkeypatch.delenv("PTTD_CONTROL_SOCKET")
    cfg = tmp_path / "p.toml"
    cfg.write_text('[control]\nsocket = "/x/cfg.sock"\n')
    monkeypatch.setenv("PTTD_CONFIG", str(cfg))
    assert control.default_socket() == "/x/cfg.sock"
    monkeypatch.setenv("PTTD_CONFIG", str(tmp_path / "missing.toml"))
    assert control.default_socket() == control.DEFAULT_SOCKET
