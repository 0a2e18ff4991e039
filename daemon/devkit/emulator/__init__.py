"""A local Live API server that speaks the real wire protocol, for tests, the demo and bring-up.

It accepts what the official SDK and pttd send (camelCase or snake_case, either base64 alphabet,
the key as a header or in the query) and answers the way the service does: binary JSON frames,
setupComplete, replies that end with generationComplete and turnComplete plus usageMetadata,
sessionResumptionUpdate handles that really resume (history kept per handle), interrupted on
barge-in, goAway before a close. Echo mode answers each user turn with the user's own audio,
resampled to 24 kHz. Faults (closes, stalls, bad frames, HTTP errors at the upgrade) can be set
by options or injected at run time, which is what the client and fault-matrix tests build on.
The package: state.py (options, Session, the send path), server.py (upgrade and handshake),
replies.py (the per-session reply logic), faults.py (fault injection), thread.py
(EmulatorThread, for tests) and cli.py (`pttd emulator`).
"""

from daemon.devkit.emulator.cli import main, options_from_args
from daemon.devkit.emulator.server import Emulator
from daemon.devkit.emulator.state import EmulatorOptions, Session, truncate_reason
from daemon.devkit.emulator.thread import EmulatorThread

__all__ = ["Emulator", "EmulatorOptions", "EmulatorThread", "Session", "main",
           "options_from_args", "truncate_reason"]
