"""Realtime scheduling for the threads on the audio path: the event loop and playback.

An ordinary (CFS) thread that wakes another process in a system call is often preempted by it
as the call returns: the send of a frame wakes the server's end of the socket, a write to the
sound server wakes its reader. On the bench VM one send in four waited 0.3-0.5 ms so, which was
all of capture -> send's p99. SCHED_RR at priority 1, the lowest realtime priority, runs these
threads ahead of every ordinary process and behind the sound server's own I/O threads
(PulseAudio 5, PipeWire 20 or more) and the kernel's interrupt threads (50).

The capture thread is left alone: it only wakes the loop, and on SCHED_RR its five wake-ups a
second while idle cost half as much CPU again (idle budget 0.2 %). SCHED_RESET_ON_FORK gives
every thread a claimed thread starts later (ALSA's pulse plugin thread, executor threads) the
normal policy back.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("pttd.realtime")

PRIORITY = 1


def claim(what: str) -> bool:
    """Put the calling thread on SCHED_RR at PRIORITY and log the outcome; False if refused.

    Unprivileged, this needs RLIMIT_RTPRIO >= PRIORITY (the shipped unit's LimitRTPRIO).
    """
    try:
        os.sched_setscheduler(0, os.SCHED_RR | os.SCHED_RESET_ON_FORK,
                              os.sched_param(PRIORITY))
    except OSError as exc:
        log.warning("%s runs at normal priority (realtime scheduling refused: %s), so a busy "
                    "machine can add latency; grant it with LimitRTPRIO=%d in the unit (the "
                    "shipped pttd.service does) or 'rtprio %d' in limits.conf",
                    what, exc.strerror or exc, PRIORITY, PRIORITY)
        return False
    log.info("%s: SCHED_RR priority %d", what, PRIORITY)
    return True
