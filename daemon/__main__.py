"""The `pttd` command line. Arguments live here; each command's module is imported only when
that command runs, so `pttd status` answers without loading numpy or websockets."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from daemon import heap

# command -> (module, function, help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("daemon.app", "main", "run the daemon in the foreground (what systemd starts)"),
    "check": ("daemon.check", "main", "validate config, API key source and audio devices"),
    "devices": ("daemon.check", "devices_main", "list ALSA PCMs and what they accept"),
    "emulator": ("daemon.devkit.emulator", "main", "run a local Live API server"),
    "demo": ("daemon.devkit.demo", "main",
             "the whole pipeline with no Pi, no sound card and no key"),
    "press": ("daemon.control", "client_main", "press the button of a running daemon"),
    "release": ("daemon.control", "client_main", "release the button of a running daemon"),
    "status": ("daemon.control", "client_main", "show the state of a running daemon"),
    "volume": ("daemon.control", "client_main",
               "set the volume of a running daemon: N (0-100), +N or -N"),
    "timers": ("daemon.control", "client_main", "list the timers of a running daemon"),
    "timer": ("daemon.control", "client_main",
              "set a timer (DURATION [LABEL], e.g. 10m tea) or cancel one (cancel [LABEL])"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pttd", description="Press-to-talk smart-speaker daemon "
                                     "for the Gemini Live API.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cmds = {name: sub.add_parser(name, help=helptext, description=helptext)
            for name, (_, _, helptext) in COMMANDS.items()}
    for name in ("run", "check", "demo"):
        cmds[name].add_argument("--config", metavar="PATH",
                                help="config file (default: $PTTD_CONFIG or /etc/pttd/pttd.toml)")
    cmds["check"].add_argument("--no-devices", action="store_true",
                               help="skip opening the audio devices (e.g. before they exist)")
    emu = cmds["emulator"]
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8765)
    emu.add_argument("--mode", choices=("echo", "text", "tools"), default="echo",
                     help="tools: answer the first turns with function calls (the demo's)")
    emu.add_argument("--tool-script", metavar="FILE",
                     help="answer turns with the function calls in this JSON script "
                          "(see daemon/devkit/tool_script.py)")
    emu.add_argument("--record", metavar="FILE", help="append every client frame as a JSON line")
    emu.add_argument("--pace", choices=("realtime", "burst"), default="realtime",
                     help="reply audio paced in real time or sent in one burst")
    emu.add_argument("--text-frames", action="store_true",
                     help="send server frames as text instead of binary")
    emu.add_argument("--go-away-after", type=float, metavar="S",
                     help="send goAway after S seconds, then close")
    emu.add_argument("--go-away-time-left", type=float, default=5.0, metavar="S")
    emu.add_argument("--close-after", type=float, metavar="S",
                     help="close the connection after S seconds (with --close-code)")
    emu.add_argument("--close-code", type=int, default=1011)
    emu.add_argument("--close-reason", default="Internal error occurred.")
    emu.add_argument("--reject-status", type=int, metavar="HTTP",
                     help="answer every upgrade with this HTTP status (e.g. 429)")
    emu.add_argument("--stall-after", type=float, metavar="S",
                     help="stop answering anything (pings included) after S seconds")
    emu.add_argument("--drip-ms", type=float, default=0.0,
                     help="extra delay between reply chunks (slow drip)")
    emu.add_argument("--malformed-every", type=int, default=0, metavar="N",
                     help="send a malformed frame before every Nth reply")
    emu.add_argument("--unknown-every", type=int, default=0, metavar="N",
                     help="send a frame with only an unknown key before every Nth reply")
    emu.add_argument("--barge-in-end", choices=("model", "interrupted", "silent"),
                     default="model", help="how a barge-in ends the reply it cuts: as the "
                     "model does, interrupted + turnComplete, or nothing at all")
    emu.add_argument("--session-deadline", type=float, metavar="S",
                     help='close with 1011 "Deadline expired" S seconds after setup '
                          "(default: the model's session limit)")
    emu.add_argument("--api-key", default=None,
                     help="require this key (default: any non-empty key)")
    demo = cmds["demo"]
    demo.add_argument("--turns", type=int, default=2, help="how many turns to run")
    demo.add_argument("--barge-in", action="store_true", help="interrupt the last reply")
    demo.add_argument("--wav", metavar="FILE", help="microphone input (default: espeak-ng speech)")
    demo.add_argument("--out", metavar="FILE", default="demo-reply.wav",
                      help="where the reply is written")
    demo.add_argument("--tools", action="store_true",
                      help="set a timer by voice, hear it ring, silence it with a press")
    demo.add_argument("--live", action="store_true",
                      help="use the real Live API (needs GEMINI_API_KEY) instead of the emulator")
    cmds["volume"].add_argument("words", nargs="*", metavar="N",
                                help="0-100, or +N / -N to change it; none: show it")
    cmds["timer"].add_argument("words", nargs="+", metavar="DURATION|cancel",
                               help="90, 90s, 10m or 1h30m, then an optional label; or cancel "
                                    "and an optional label")
    for name in ("press", "release", "status", "volume", "timers", "timer"):
        cmds[name].add_argument("--socket", metavar="PATH",
                                help="control socket (default: from config, or "
                                     "/run/pttd/control.sock)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, func, _ = COMMANDS[args.command]
    # Before numpy is first imported: its bundled OpenBLAS starts a worker thread per extra core
    # at import, and they spin for a while, taking CPU from start-up (docs/performance-notes.md),
    # then stay for good. pttd does no linear algebra, so one BLAS thread is all it needs; a
    # value already set wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if args.command == "run":
        heap.hold()  # until the daemon is ready: see daemon/heap.py
    handler = getattr(importlib.import_module(module), func)
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
