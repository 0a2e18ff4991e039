"""Secrets and access: the key never leaves in any form through a fault-heavy run at DEBUG,
the control socket is not world-writable, plain ws:// is refused off loopback, and TLS
certificates are always verified."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import re
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from fixtures_daemon import DaemonRig

from config import LiveConfig
from config.apikey import ApiKey
from daemon.devkit.emulator import EmulatorOptions, EmulatorThread
from daemon.devkit.simsink import SimSink
from daemon.live.client import LiveClient

ROOT = Path(__file__).resolve().parent.parent
KEY = "AIzaSyPTTD-secret_KEY+/=&0123456789abcd"


def forms(key: str) -> list[str]:
    raw = key.encode()
    out = {key, quote(key, safe=""), quote(key)}
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        out.update((enc(raw).decode(), enc(raw).decode().rstrip("=")))
    return sorted(out)


def test_key_never_appears_anywhere_through_faults_at_debug(
        tmp_path: Path, counter_sink: SimSink) -> None:
    with EmulatorThread(EmulatorOptions(pace="burst")) as emu:
        d = DaemonRig(tmp_path, counter_sink, emu, key=KEY, journal=True)
        with d:
            d.wait_ready()
            statuses = [d.control("status")]
            for fault, kw in (("malformed", {}), ("unknown_only", {}), ("bad_base64", {}),
                              ("close", {"code": 1011}), ("reject", {"status": 403})):
                emu.inject(fault, **kw)
                time.sleep(0.4)
                statuses.append(d.control("status"))
                d.control("press")
                time.sleep(0.3)
                statuses.append(d.control("release"))
            time.sleep(1.0)
            assert d.stop()[0] == 0
        frames = emu.frames
    captured = "\n".join([
        d.stderr,
        "\n".join(str(v) for entry in d.journal() for v in entry.values()),
        repr(statuses),
        repr(frames),                      # every client frame, handshake headers aside
    ])
    assert len(d.journal()) > 20
    assert any(e["PRIORITY"] == "7" for e in d.journal())        # DEBUG lines were written
    for form in forms(KEY):
        assert form not in captured, f"the key leaked as {form!r}"


def test_control_socket_of_a_running_daemon_is_not_world_writable(
        tmp_path: Path, counter_sink: SimSink) -> None:
    with EmulatorThread(EmulatorOptions()) as emu, DaemonRig(tmp_path, counter_sink, emu) as d:
        d.wait_ready()
        mode = stat.S_IMODE(d.socket_path.stat().st_mode)
        assert mode & 0o007 == 0, oct(mode)
        assert d.stop()[0] == 0


def test_plain_ws_to_a_remote_host_is_refused_at_start(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text('[live]\nendpoint = "ws://192.0.2.10:8765"\napi_key_file = ""\n')
    proc = subprocess.run([sys.executable, "-m", "daemon", "run", "--config", str(cfg)],
                          cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "GEMINI_API_KEY": KEY})
    assert proc.returncode == 78
    assert "ws:// is only allowed to a loopback host" in proc.stdout + proc.stderr
    assert KEY not in proc.stdout + proc.stderr


def test_no_code_disables_certificate_verification() -> None:
    pattern = re.compile(r"CERT_NONE|check_hostname\s*=\s*False|verify\s*=\s*False|"
                         r"_create_unverified_context")
    for folder in ("daemon", "hw", "config"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not pattern.search(path.read_text()), path


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_a_self_signed_wss_server_is_refused(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    from websockets.asyncio.server import serve

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    handshakes: list[str] = []

    async def handler(ws: object) -> None:
        handshakes.append("reached the handler")

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, ssl=server_ctx) as server:
            port = server.sockets[0].getsockname()[1]
            cfg = LiveConfig(endpoint=f"wss://127.0.0.1:{port}", reconnect_min_s=0.05,
                             reconnect_max_s=1.0)
            client = LiveClient(cfg, ApiKey("test", KEY), on_event=lambda e: None)
            task = asyncio.create_task(client.run())
            await asyncio.sleep(1.5)
            assert client.state != "ready"
            await client.close()
            await asyncio.wait_for(task, 5)

    with caplog.at_level("DEBUG", logger="pttd"):
        asyncio.run(main())
    assert handshakes == []
    text = caplog.text
    assert "certificate" in text.lower() or "ssl" in text.lower(), text
    assert KEY not in text
