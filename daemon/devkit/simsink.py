"""A real-time sound "card" with no hardware: a private PulseAudio server with a null sink.

Used by the tests, `pttd demo` and the bench. It starts its own `pulseaudio` in a fresh temp
directory, writes an ALSA config defining paced PCMs that reach it through ALSA's `pulse`
plugin, and records what was heard on the sink's monitor. A child process sees those PCMs
when started with `env` merged into its environment.

PCMs (names in the attributes):
  capture_device   paced capture that reads `mic_file` (raw 16 kHz mono s16le) from its start
                   at every open, then silence for an hour (a sparse copy of the file)
  playback_device  paced playback whose *written* stream is recorded (`written()`)
  plain_capture    paced capture of whatever the sink plays (its monitor)
  plain_playback   paced playback into the sink
  voice_playback   paced playback into a second sink, "the room": what is played there is what
                   voice_capture hears
  voice_capture    a microphone apart from the speaker, as on a Pi: its packets come at the
                   pace its own client asks for, not at the speaker monitor's 10 ms
`monitor_path` is the raw recording of what the sink *heard* (mono s16le at `monitor_rate`):
audio discarded by a barge-in's drop appears in `written()` but not there. All files stay in
`dir` (a fresh directory under the caller's workdir) after stop(), for the caller to read.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

SYSTEM_ALSA_CONF = Path("/usr/share/alsa/alsa.conf")
SILENCE_AFTER_MIC_S = 3600
MIC_RATE = 16000
READY_TIMEOUT_S = 10.0
TOOLS = ("pulseaudio", "pactl", "parec")


class SimSinkError(RuntimeError):
    """The simulated sound card could not be set up; the message says what to do."""


class SimSink:
    def __init__(self, workdir: Path, *, mic_file: Path | None = None,
                 monitor_rate: int = 24000) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pa-", dir=workdir))
        self.socket = self.dir / "native"
        if len(str(self.socket)) > 100:
            raise SimSinkError(f"{self.socket}: path too long for a Unix socket; use a shorter "
                               "work directory")
        self.monitor_rate = monitor_rate
        self.monitor_path = self.dir / "monitor.raw"
        self.written_path = self.dir / "written.raw"
        self.mic_path = self.dir / "mic.raw"
        self.alsa_conf = self.dir / "asound.conf"
        self.plain_capture = "pttd_sim_cap"
        self.plain_playback = "pttd_sim_play"
        self.voice_playback = "pttd_sim_voice"
        self.voice_capture = "pttd_sim_voicemic"
        self.capture_device = "pttd_sim_mic" if mic_file is not None else self.plain_capture
        self.playback_device = "pttd_sim_rec"
        self._mic_file = mic_file
        self._server: subprocess.Popen[bytes] | None = None
        self._monitor: subprocess.Popen[bytes] | None = None
        self.env = {
            "ALSA_CONFIG_PATH": f"{SYSTEM_ALSA_CONF}:{self.alsa_conf}",
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_CLIENTCONFIG": str(self.dir / "client.conf"),
        }

    def __enter__(self) -> SimSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Write the configs, start the server and the monitor recorder, warm the sink up."""
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise SimSinkError(f"{', '.join(missing)} not installed: run make setup")
        if not SYSTEM_ALSA_CONF.exists():
            raise SimSinkError(f"{SYSTEM_ALSA_CONF} missing: install libasound2 (make setup)")
        self._write_configs()
        self.start_server()

    def stop(self) -> None:
        """Stop the monitor recorder and the server; no process is left behind."""
        self.stop_server()

    def start_server(self) -> None:
        """(Re)start PulseAudio on the same socket; PCM users reconnect at their next open."""
        if self._server is not None:
            return
        (self.dir / "rt").mkdir(exist_ok=True)
        log = open(self.dir / "pulseaudio.log", "ab")  # noqa: SIM115  # owned by the child
        try:
            self._server = subprocess.Popen(
                ["pulseaudio", "-n", "-F", str(self.dir / "default.pa"), "--daemonize=no",
                 "--exit-idle-time=-1", "--use-pid-file=no", "--log-target=stderr"],
                env=self._server_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        try:
            self._wait_ready()
            self._start_monitor()
            self._pactl("suspend-sink", "nullsink", "1")
            self._pactl("suspend-sink", "nullsink", "0")
        except BaseException:
            self.stop_server()
            raise

    def stop_server(self) -> None:
        """Stop PulseAudio (and the monitor recorder): every PCM on it fails until restarted."""
        for proc in (self._monitor, self._server):
            if proc is None:
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._monitor = self._server = None

    def written(self) -> bytes:
        """Everything written to `playback_device`, across reopens, in order."""
        files = sorted(self.dir.glob(self.written_path.name + "*"),
                       key=lambda p: (len(p.name), p.name))
        return b"".join(p.read_bytes() for p in files)

    def heard(self) -> bytes:
        """The monitor recording so far."""
        return self.monitor_path.read_bytes() if self.monitor_path.exists() else b""

    def _server_env(self) -> dict[str, str]:
        env = dict(os.environ)
        runtime = str(self.dir / "rt")
        env.update(HOME=str(self.dir), XDG_RUNTIME_DIR=runtime, PULSE_RUNTIME_PATH=runtime,
                   XDG_CONFIG_HOME=str(self.dir / "config"))
        env.pop("PULSE_SERVER", None)
        return env

    def _client_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        return env

    def _pactl(self, *args: str) -> None:
        result = subprocess.run(["pactl", *args], env=self._client_env(), capture_output=True,
                                timeout=5, check=False)
        if result.returncode != 0:
            raise SimSinkError(f"pactl {' '.join(args)} failed: "
                               f"{result.stderr.decode(errors='replace').strip()}")

    def _wait_ready(self) -> None:
        assert self._server is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self._server.poll() is not None:
                raise SimSinkError(f"pulseaudio exited with status {self._server.returncode}: "
                                   f"{self._log_tail()}")
            if subprocess.run(["pactl", "info"], env=self._client_env(), capture_output=True,
                              timeout=5, check=False).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise SimSinkError(f"pulseaudio not ready after {READY_TIMEOUT_S:g} s: "
                                   f"{self._log_tail()}")
            time.sleep(0.02)

    def _start_monitor(self) -> None:
        out = open(self.monitor_path, "ab")  # noqa: SIM115  # owned by the child
        try:
            self._monitor = subprocess.Popen(
                ["parec", "--device=nullsink.monitor", "--format=s16le",
                 f"--rate={self.monitor_rate}", "--channels=1", "--latency-msec=10", "--raw"],
                env=self._client_env(), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.DEVNULL)
        finally:
            out.close()
        time.sleep(0.05)
        if self._monitor.poll() is not None:
            raise SimSinkError(f"parec exited with status {self._monitor.returncode}: cannot "
                               "record the null sink's monitor")

    def _log_tail(self) -> str:
        path = self.dir / "pulseaudio.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        useful = [ln for ln in lines if ln.startswith("E:")] or lines
        return " | ".join(useful[-3:]) or "no log output"

    def _write_configs(self) -> None:
        (self.dir / "default.pa").write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            "load-module module-null-sink sink_name=nullsink rate=48000\n"
            f"load-module module-null-sink sink_name=voicesink rate={MIC_RATE}\n"
            "set-default-sink nullsink\n"
            "set-default-source nullsink.monitor\n")
        (self.dir / "client.conf").write_text("autospawn = no\n")
        server = f'server "unix:{self.socket}"'

        def hint(text: str) -> str:
            return f'hint {{ show on; description "pttd simulated sound card: {text}" }}'

        conf = [
            f'pcm.{self.plain_capture} {{ type pulse; {server}; device "nullsink.monitor"; '
            f'{hint("hears what is played")} }}',
            f'pcm.{self.plain_playback} {{ type pulse; {server}; device "nullsink"; '
            f'{hint("speaker")} }}',
            f'pcm.{self.voice_playback} {{ type pulse; {server}; device "voicesink"; '
            f'{hint("the room the microphone hears")} }}',
            f'pcm.{self.voice_capture} {{ type pulse; {server}; device "voicesink.monitor"; '
            f'{hint("microphone hearing the room")} }}',
            f'pcm.{self.playback_device} {{ type file; slave.pcm "{self.plain_playback}"; '
            f'file "{self.written_path}"; format "raw"; truncate false; '
            f'{hint("speaker, recorded")} }}',
        ]
        if self._mic_file is not None:
            with open(self._mic_file, "rb") as src, open(self.mic_path, "wb") as dst:
                shutil.copyfileobj(src, dst)
                dst.truncate(dst.tell() + SILENCE_AFTER_MIC_S * MIC_RATE * 2)
            conf.append(f'pcm.{self.capture_device} {{ type file; slave.pcm '
                        f'"{self.plain_capture}"; file "/dev/null"; infile "{self.mic_path}"; '
                        f'format "raw"; {hint("microphone playing a file")} }}')
        self.alsa_conf.write_text("\n".join(conf) + "\n")
