"""Realtime scheduling for the threads on the audio path: the event loop and playback.

An ordinary (CFS) thread that wakes another process in a system call is often preempted by it
as the call returns: the send of a frame wakes the server's end of the socket, a write to the
sound server wakes its reader. SCHED_RR at priority 1, the lowest realtime priority, runs these
threads ahead of every ordinary process and behind the sound server's own I/O threads
(PulseAudio 5, PipeWire 20 or more) and the kernel's interrupt threads (50).

Both threads also share one CPU. They hand the GIL to each other and never run Python at the
same time, so a second CPU buys them nothing but cross-CPU wake-ups: a realtime thread woken
by another of its priority goes to a different CPU, and there races the waker for the GIL; on
one CPU the hand-over is a context switch, in order (figures: docs/performance-notes.md).

The capture thread is left alone: it only reads while idle (the loop reads while a turn is
held), and on SCHED_RR its idle wake-ups would cost more CPU. SCHED_RESET_ON_FORK gives every
thread a claimed thread starts later (ALSA's pulse plugin thread, executor threads) the normal
policy back; they keep its CPU.

    if realtime.claim("playback"):
        ...  # this thread now runs SCHED_RR on realtime.audio_cpu()
"""

from __future__ import annotations

import functools
import logging
import os

log = logging.getLogger("pttd.realtime")

PRIORITY = 1


@functools.cache
def audio_cpu() -> int:
    """The CPU the claimed threads share: the last one allowed (the first takes most IRQs)."""
    return max(os.sched_getaffinity(0))


def claim(what: str) -> bool:
    """Move the calling thread to SCHED_RR at PRIORITY on audio_cpu() and log the outcome;
    False, with nothing changed, if the kernel refused.

    Unprivileged, this needs RLIMIT_RTPRIO >= PRIORITY (the shipped unit's LimitRTPRIO).
    """
    cpu = audio_cpu()
    try:
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK,
                              os.sched_param(PRIORITY))
    except OSError as exc:
        log.warning("%s runs at normal priority (realtime scheduling refused: %s), so a busy "
                    "machine can add latency; grant it with LimitRTPRIO=%d in the unit (the "
                    "shipped pttd.service does) or 'rtprio %d' in limits.conf",
                    what, exc.strerror or exc, PRIORITY, PRIORITY)
        return False
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        log.warning("%s: SCHED_RR priority %d, but not kept on CPU %d (%s)", what, PRIORITY,
                    cpu, exc.strerror or exc)
        return True
    log.info("%s: SCHED_RR priority %d on CPU %d", what, PRIORITY, cpu)
    return True
