"""`pttd emulator`: the emulator as a command, until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from daemon.devkit.emulator.server import Emulator
from daemon.devkit.emulator.state import EmulatorOptions
from daemon.devkit.tool_script import DEMO_TURNS, load_script


def options_from_args(args: argparse.Namespace) -> EmulatorOptions:
    return EmulatorOptions(
        host=args.host, port=args.port, mode=args.mode, pace=args.pace,
        text_frames=args.text_frames, drip_ms=args.drip_ms, go_away_after=args.go_away_after,
        go_away_time_left=args.go_away_time_left, close_after=args.close_after,
        close_code=args.close_code, close_reason=args.close_reason,
        reject_status=args.reject_status, stall_after=args.stall_after,
        malformed_every=args.malformed_every, unknown_every=args.unknown_every,
        api_key=args.api_key, record=args.record, barge_in_end=args.barge_in_end,
        session_deadline_s=args.session_deadline,
        tool_turns=load_script(args.tool_script) if args.tool_script else
        DEMO_TURNS if args.mode == "tools" else ())


async def _serve(opts: EmulatorOptions) -> None:
    emulator = Emulator(opts)
    await emulator.start()
    print(f"pttd emulator listening on {emulator.url} (mode {opts.mode}, pace {opts.pace}); "
          f"endpoint for pttd: {emulator.url}", flush=True)
    try:
        await asyncio.Future()
    finally:
        await emulator.stop()


def main(args: argparse.Namespace) -> int:
    """`pttd emulator`: serve until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.record:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
    try:
        opts = options_from_args(args)
    except ValueError as exc:  # a tool script that cannot be read
        print(f"pttd emulator: {exc}")
        return 2
    try:
        asyncio.run(_serve(opts))
    except OSError as exc:
        print(f"pttd emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}")
        return 1
    return 0
