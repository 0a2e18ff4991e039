"""Streaming resampling is continuous across chunk boundaries; mix-down matches plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.resample import MixDown, Resampler

RATES = [(24000, 48000), (48000, 16000), (44100, 16000), (24000, 44100)]


def _signal(n: int, rate: int) -> np.ndarray:
    t = np.arange(n) / rate
    x = 9000 * np.sin(2 * np.pi * 440 * t) + 4000 * np.sin(2 * np.pi * 1234.5 * t)
    return x.astype(np.int16)


@settings(max_examples=40, deadline=None)
@given(rates=st.sampled_from(RATES), cuts=st.lists(st.integers(1, 2000), min_size=1, max_size=30))
def test_chunked_equals_one_call(rates: tuple[int, int], cuts: list[int]) -> None:
    x = _signal(sum(cuts), rates[0])
    whole = Resampler(*rates)
    expected = np.concatenate([whole.process(x).copy(), whole.flush()])
    chunked = Resampler(*rates)
    parts, i = [], 0
    for c in cuts:
        parts.append(chunked.process(x[i:i + c]).copy())
        i += c
    parts.append(chunked.flush())
    got = np.concatenate(parts)
    assert len(got) == len(expected)
    # The nearest whole number of samples; at an exact tie (e.g. 367.5) soxr may give either.
    assert abs(len(got) - len(x) * rates[1] / rates[0]) <= 0.5
    np.testing.assert_array_equal(got, expected)


def test_reset_starts_a_fresh_stream() -> None:
    x = _signal(4800, 24000)
    r = Resampler(24000, 48000)
    first = np.concatenate([r.process(x).copy(), r.flush()])
    second = np.concatenate([r.process(x).copy(), r.flush()])
    np.testing.assert_array_equal(first, second)
    r.process(x[:1000])
    r.reset()
    third = np.concatenate([r.process(x).copy(), r.flush()])
    np.testing.assert_array_equal(first, third)


def test_same_rate_is_passthrough() -> None:
    x = _signal(100, 16000)
    r = Resampler(16000, 16000)
    assert r.passthrough and r.process(x) is x and len(r.flush()) == 0 and r.drained


def test_drained_tracks_the_filter_tail() -> None:
    r = Resampler(24000, 48000)
    assert not r.drained
    r.process(_signal(480, 24000))
    assert not r.drained
    assert len(r.flush()) > 0 and r.drained
    r.process(_signal(480, 24000))
    assert not r.drained


@pytest.mark.parametrize(("channels", "select"), [(1, -1), (2, -1), (2, 1), (4, -1), (3, 0)])
def test_mixdown(channels: int, select: int) -> None:
    rng = np.random.default_rng(channels)
    frames = rng.integers(-32768, 32768, size=160 * channels, dtype=np.int16)
    grid = frames.reshape(-1, channels).astype(np.int64)
    expected = grid[:, select] if select >= 0 else np.floor_divide(grid.sum(axis=1), channels)
    m = MixDown(channels, select)
    for _ in range(2):
        np.testing.assert_array_equal(m.process(frames), expected.astype(np.int16))


def test_mixdown_rejects_missing_channel() -> None:
    with pytest.raises(ValueError, match="does not exist"):
        MixDown(2, 2)
