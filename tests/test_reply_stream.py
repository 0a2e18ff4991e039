"""The pure reply stream: jitter buffer, one resampling step, gaps, earcons, volume; no ALSA."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from fixtures_audio import counter

from config import EarconsConfig
from hw.earcons import Earcons, tone
from hw.reply import (
    HISTORY,
    LATE_HEADROOM,
    LOW_WATER_MAX_S,
    LOW_WATER_S,
    LOW_WATER_STEP_S,
    Jitter,
    ReplyStream,
)

RATE = 24000
LOW = round(RATE * LOW_WATER_S)


def _stream(rate: int = RATE, wait_s: float = 0.08, earcons: EarconsConfig | None = None,
            volume: float = 1.0) -> ReplyStream:
    cfg = earcons or EarconsConfig(enabled=False)
    return ReplyStream(rate, Earcons(cfg, rate), first_wait_s=wait_s, volume=volume)


def _drain(stream: ReplyStream, now: float, size: int = 1000) -> np.ndarray:
    got = []
    out = np.zeros(size, dtype=np.int16)
    while True:
        n, _ = stream.pull(out, now, queued=10 * LOW)
        if n == 0:
            return np.concatenate(got) if got else np.zeros(0, dtype=np.int16)
        got.append(out[:n].copy())


def test_passthrough_delivers_every_sample_across_odd_splits() -> None:
    reply = counter(5, 7001).tobytes()
    stream = _stream()
    cuts = [0, 1, 2, 777, 778, 5001, len(reply)]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        stream.feed(reply[a:b], RATE, now=0.0, received_at=float(i))
    stream.end()
    got = _drain(stream, now=0.0)
    assert got.tobytes() == reply[:len(reply) & ~1]
    assert stream.handed() == [1.0, 2.0, 3.0, 4.0, 5.0]  # the first byte alone held no sample
    assert stream.done and stream.finish() and not stream.done


def test_a_48k_reply_is_resampled_once_straight_to_the_device_rate() -> None:
    t = np.arange(48000) / 48000
    reply = (16000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    stream = _stream()
    for i in range(0, len(reply), 1920):
        stream.feed(reply[i:i + 1920].tobytes(), 48000, now=0.0)
    stream.end()
    got = _drain(stream, now=0.0).astype(np.float64)
    assert abs(len(got) - RATE) <= 1
    mid = got[2400:21600]
    spectrum = np.abs(np.fft.rfft(mid * np.blackman(len(mid)))) ** 2
    freqs = np.fft.rfftfreq(len(mid), 1 / RATE)
    band = np.abs(freqs - 1000) < 20
    assert abs(freqs[np.argmax(spectrum)] - 1000) < 2
    assert 10 * np.log10(spectrum[band].sum() / spectrum[~band].sum()) >= 60


def test_first_reply_waits_for_the_configured_amount_of_audio() -> None:
    stream = _stream(wait_s=0.08)
    out = np.zeros(480, dtype=np.int16)
    stream.feed(counter(0, 960).tobytes(), RATE, now=10.0)
    assert not stream.ready(11.0) and stream.start_in(11.0) is None
    assert stream.pull(out, 11.0, queued=0) == (0, False)
    stream.feed(counter(960, 960).tobytes(), RATE, now=11.0)
    assert stream.ready(11.0)
    assert stream.pull(out, 11.0, queued=0) == (480, True)
    assert stream.pull(out, 11.01, queued=0) == (480, False)


def _reply(stream: ReplyStream, t0: float, lateness: list[float], chunk_s: float = 0.04) -> None:
    n = round(RATE * chunk_s)
    for i, late in enumerate(lateness):
        stream.feed(counter(i * n, n).tobytes(), RATE, now=t0 + i * chunk_s + late)
    stream.end()
    _drain(stream, now=t0 + 100)
    stream.finish()


def test_a_server_ahead_of_real_time_starts_the_next_reply_at_once() -> None:
    stream = _stream(wait_s=0.08)
    n = RATE // 25
    for i in range(20):  # the whole reply in a burst: every chunk early
        stream.feed(counter(i * n, n).tobytes(), RATE, now=5.0 + i * 0.001)
    stream.end()
    _drain(stream, now=6.0)
    stream.finish()
    stream.feed(counter(0, n).tobytes(), RATE, now=9.0)
    assert stream.ready(9.0)
    assert stream.jitter.wait() == 0.0


def test_the_wait_follows_the_lateness_seen_in_recent_replies() -> None:
    stream = _stream(wait_s=0.08)
    # The chunk 35 ms late comes 55 ms after the one 20 ms early would have had it played.
    _reply(stream, 1.0, [0.0, 0.01, -0.02, 0.035, 0.0])
    wait = 0.055 * LATE_HEADROOM + LOW_WATER_S
    assert stream.jitter.wait() == pytest.approx(wait)
    stream.feed(counter(0, 960).tobytes(), RATE, now=20.0)
    assert not stream.ready(20.0 + wait - 0.001) and stream.ready(20.0 + wait)
    stream.stop()
    for k in range(HISTORY):  # calm replies push the jittery one out of the history
        _reply(stream, 30.0 + k, [0.0, 0.002, 0.001])
    assert stream.jitter.wait() == pytest.approx(0.002 * LATE_HEADROOM + LOW_WATER_S)


def _play(stream: ReplyStream, t0: float, lateness: list[float], chunk_s: float = 0.04) -> int:
    """Play one reply through a device that consumes in real time, topped up every 1 ms as the
    playback thread does: the gaps it needed."""
    n, gaps, queued = round(RATE * chunk_s), stream.gaps, 0
    out = np.zeros(2400, dtype=np.int16)
    fed, tick = 0, 0
    while not stream.done:
        now = t0 + tick / 1000
        while fed < len(lateness) and t0 + fed * chunk_s + lateness[fed] <= now:
            stream.feed(counter(fed * n, n).tobytes(), RATE, now=now)
            fed += 1
            if fed == len(lateness):
                stream.end()
        queued = max(0, queued - RATE // 1000)
        while (got := stream.pull(out, now, queued)[0]):
            queued += got
        tick += 1
    stream.finish()
    return stream.gaps - gaps


def test_a_reply_a_little_later_than_any_seen_still_plays_without_a_gap() -> None:
    """The worst of a few replies understates the next: the wait keeps LATE_HEADROOM of it."""
    stalls = [0.0] * 3 + [0.04] * 7       # the network stalls 40 ms a few chunks in
    worse = [0.0] * 3 + [0.046] * 7       # the next reply's stall is 15 % longer
    stream = _stream(wait_s=0.0)
    assert _play(stream, 1.0, stalls) > 0, "nothing learned yet: the stall is a gap"
    assert _play(stream, 2.0, stalls) == 0
    assert _play(stream, 3.0, worse) == 0
    much_worse = [0.0] * 3 + [0.046 * LATE_HEADROOM + 0.006] * 7
    assert _play(stream, 4.0, much_worse) == 1, "beyond the headroom it is a gap, and learned"
    assert _play(stream, 5.0, much_worse) == 0


def test_jitter_measures_lateness_against_the_most_punctual_chunk_before() -> None:
    jitter = Jitter()
    assert jitter.start_at() is None and not jitter.learned
    jitter.arrived(2.0, 0.0)
    jitter.arrived(2.05, 0.04)   # 10 ms late
    jitter.arrived(2.06, 0.08)   # 20 ms early
    jitter.arrived(2.13, 0.12)   # 10 ms late, 30 ms after the early one
    assert jitter.start_at() is None, "nothing learned yet"
    jitter.reply_over()
    assert jitter.learned and jitter.wait() == pytest.approx(0.03 * LATE_HEADROOM + LOW_WATER_S)
    jitter.arrived(5.0, 0.0)
    jitter.arrived(5.01, 0.04)   # 30 ms early: the next chunks are due from it
    assert jitter.start_at() == pytest.approx(4.97 + 0.03 * LATE_HEADROOM + LOW_WATER_S)


def test_a_late_chunk_gets_silence_once_the_device_runs_low_counted_once() -> None:
    stream = _stream(wait_s=0.0)
    out = np.zeros(2400, dtype=np.int16)
    stream.feed(counter(0, 480).tobytes(), RATE, now=0.0)
    assert stream.pull(out, 0.0, queued=0) == (480, True)
    assert stream.pull(out, 0.01, queued=LOW + 1) == (0, False)
    out[:] = 7
    assert stream.pull(out, 0.02, queued=LOW) == (LOW, False)
    assert not out[:LOW].any()
    assert stream.pull(out, 0.03, queued=LOW)[0] == LOW
    assert stream.gaps == 1
    stream.feed(counter(480, 480).tobytes(), RATE, now=0.04)
    assert stream.pull(out, 0.04, queued=LOW)[0] == 480
    np.testing.assert_array_equal(out[:480], counter(480, 480))
    stream.end()
    assert stream.pull(out, 0.05, queued=0) == (0, False), "an ended reply gets no silence"
    assert stream.gaps == 1 and stream.done


def test_a_device_that_ran_dry_gets_more_audio_ahead_up_to_a_ceiling() -> None:
    stream = _stream(wait_s=0.0)
    _reply(stream, 1.0, [0.0, 0.01, 0.0])
    assert stream.low_water == LOW
    assert stream.jitter.wait() == pytest.approx(0.01 * LATE_HEADROOM + LOW_WATER_S)
    assert not stream.in_reply
    stream.feed(counter(0, 480).tobytes(), RATE, now=10.0)
    out = np.zeros(2400, dtype=np.int16)
    assert stream.pull(out, 10.0 + stream.jitter.wait(), queued=0)[0] == 480
    assert stream.in_reply
    assert stream.underran()
    step = LOW_WATER_S + LOW_WATER_STEP_S
    assert stream.low_water == round(RATE * step)
    assert stream.jitter.wait() == pytest.approx(0.01 * LATE_HEADROOM + step), \
        "the start-up wait grows too"
    # A late chunk now gets silence while the device still holds the larger margin.
    assert stream.pull(out, 10.1, queued=round(RATE * step) + 1)[0] == 0
    assert stream.pull(out, 10.11, queued=round(RATE * step))[0] == round(RATE * step)
    assert stream.gaps == 1
    while stream.underran():
        pass
    assert stream.jitter.margin == pytest.approx(LOW_WATER_MAX_S)
    assert stream.low_water == round(RATE * LOW_WATER_MAX_S)


def test_earcon_mixes_into_the_reply_and_volume_scales_both() -> None:
    cfg = EarconsConfig(volume=0.2)
    stream = _stream(wait_s=0.0, earcons=cfg, volume=0.5)
    reply = np.full(RATE // 2, 1000, dtype=np.int16)
    stream.feed(reply.tobytes(), RATE, now=0.0)
    stream.play_earcon("error")
    stream.end()
    got = _drain(stream, now=0.0, size=480).astype(np.int64)
    beep = tone("error", RATE, 0.2).astype(np.int64)
    expected = np.zeros(max(len(reply), len(beep)), dtype=np.int64)
    expected[:len(reply)] += 1000
    expected[:len(beep)] += beep
    np.testing.assert_allclose(got, np.clip(expected, -32768, 32767) * 0.5, atol=1)


def test_earcon_alone_plays_without_a_reply() -> None:
    stream = _stream(earcons=EarconsConfig(volume=0.3))
    stream.play_earcon("listen_start")
    assert stream.has_work(0.0) and not stream.idle
    got = _drain(stream, now=0.0)
    np.testing.assert_array_equal(got, tone("listen_start", RATE, 0.3))
    assert stream.idle and not stream.finish()


def test_stop_forgets_the_reply_and_the_earcon() -> None:
    stream = _stream(wait_s=0.0, earcons=EarconsConfig())
    stream.feed(counter(0, 4800).tobytes(), RATE, now=0.0, received_at=0.0)
    stream.play_earcon("error")
    stream.stop()
    assert stream.buffered == 0 and stream.idle and not stream.has_work(1.0)
    assert stream.handed() == []
    stream.feed(counter(9, 10).tobytes(), RATE, now=1.0)
    stream.end()
    np.testing.assert_array_equal(_drain(stream, 1.0), counter(9, 10))


def test_discard_reports_what_was_dropped_and_ends_an_ended_reply() -> None:
    stream = _stream()
    stream.feed(counter(0, 100).tobytes(), RATE, now=0.0)
    assert stream.discard() == (100, False)
    assert stream.active, "a reply still arriving stays under way"
    stream.end()
    assert stream.discard() == (0, True)
    assert stream.idle


def test_end_of_an_empty_reply_is_done_at_once() -> None:
    stream = _stream()
    stream.feed(b"\x01", RATE, now=0.0)
    stream.end()
    assert stream.ready(0.0) and stream.done and stream.finish()


def test_a_reply_fed_while_the_last_plays_out_follows_without_a_wait() -> None:
    stream = _stream(wait_s=0.5)
    out = np.zeros(100, dtype=np.int16)
    stream.feed(counter(0, 1000).tobytes(), RATE, now=0.0)
    stream.end()
    assert stream.pull(out, 0.0, queued=0)[0] == 100
    stream.feed(counter(1000, 100).tobytes(), RATE, now=0.01)
    assert stream.ready(0.01)
    stream.end()
    np.testing.assert_array_equal(_drain(stream, 0.01), counter(100, 1000))


def test_a_device_granting_another_rate_keeps_what_was_buffered() -> None:
    t = np.arange(RATE) / RATE
    tone1k = (16000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    stream = _stream(wait_s=0.08)
    stream.feed(tone1k[:12000].tobytes(), RATE, now=0.0, received_at=1.0)
    stream.set_rate(48000, Earcons(EarconsConfig(enabled=False), 48000))
    stream.feed(tone1k[12000:].tobytes(), RATE, now=0.0, received_at=2.0)
    stream.end()
    got = _drain(stream, now=0.0)
    assert abs(len(got) - 48000) <= 2
    assert stream.handed() == [1.0, 2.0]
    spectrum = np.abs(np.fft.rfft(got[4800:43200] * np.blackman(38400)))
    assert abs(np.argmax(spectrum) * 48000 / 38400 - 1000) < 2


def test_an_alarm_floor_lifts_the_tone_only_and_stop_earcon_silences_it() -> None:
    stream = _stream(wait_s=0.0, earcons=EarconsConfig(enabled=False), volume=0.0)
    reply = np.full(RATE // 10, 1000, dtype=np.int16)
    stream.feed(reply.tobytes(), RATE, now=0.0)
    stream.play_earcon("alarm", floor=0.5)
    out = np.zeros(480, dtype=np.int16)
    n, _ = stream.pull(out, 0.0, queued=10 * LOW)
    alarm = tone("alarm", RATE, 0.6).astype(np.float64)
    np.testing.assert_allclose(out[:n], np.rint(alarm[:n] * 0.5), atol=1,
                               err_msg="the reply stays at volume 0, the tone at the floor")
    assert not stream.stop_earcon(), "a reply is in the stream: the device keeps its audio"
    n, _ = stream.pull(out, 0.0, queued=10 * LOW)
    assert n and not out[:n].any(), "the tone is gone; the silent reply plays on"
