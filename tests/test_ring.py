"""Ring and Fifo against trivial list models, including a real producer thread racing a reader."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.ring import Fifo, Ring

OPS = st.lists(st.one_of(st.tuples(st.just("w"), st.integers(0, 40)),
                         st.tuples(st.just("r"), st.integers(0, 40)),
                         st.tuples(st.just("b"), st.integers(0, 40))), max_size=60)


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(1, 32), ops=OPS)
def test_ring_matches_model(capacity: int, ops: list[tuple[str, int]]) -> None:
    ring = Ring(capacity)
    model: list[int] = []
    pos = 0
    overruns = 0
    counter = 0
    for op, k in ops:
        if op == "w":
            chunk = np.arange(counter, counter + k, dtype=np.int64).astype(np.int16)
            counter += k
            ring.write(chunk)
            model.extend(chunk.tolist())
        elif op == "b":
            pos = max(ring.head - k, ring.oldest)
            assert pos == max(len(model) - k, len(model) - capacity, 0)
        else:
            oldest = max(0, len(model) - capacity)
            if pos < oldest:
                overruns += 1
                pos_model = oldest
            else:
                pos_model = pos
            expected = model[pos_model:pos_model + k]
            out = np.full(k, -1, dtype=np.int16)
            new_pos, n = ring.read(pos, out)
            assert out[:n].tolist() == expected
            assert (new_pos, n) == (pos_model + len(expected), len(expected))
            assert (out[n:] == -1).all()
            pos = new_pos
        assert ring.head == len(model)
        assert ring.overruns == overruns
        assert ring.high_water <= capacity


def test_read_beyond_head_is_refused() -> None:
    ring = Ring(8)
    ring.write(np.ones(3, dtype=np.int16))
    with pytest.raises(ValueError, match="beyond"):
        ring.read(4, np.zeros(4, dtype=np.int16))


def test_concurrent_producer_never_yields_torn_reads() -> None:
    """A producer thread writes a counter flat out; every read must be a contiguous run."""
    ring = Ring(997)
    total = 400_000
    done = threading.Event()

    def produce() -> None:
        block = np.arange(0, 331, dtype=np.int64)
        for start in range(0, total, 331):
            ring.write(((block + start) & 0xFFFF).astype(np.uint16).view(np.int16))
        done.set()

    out = np.zeros(500, dtype=np.int16)
    pos = 0
    checked = 0
    t = threading.Thread(target=produce)
    t.start()
    while not done.is_set() or pos < ring.head:
        pos, n = ring.read(pos, out)
        if n:
            got = out[:n].view(np.uint16).astype(np.int64)
            assert got[0] == (pos - n) & 0xFFFF
            assert (np.diff(got) % 65536 == 1).all()
            checked += n
    t.join()
    assert checked > 0


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 50)), max_size=60))
def test_fifo_matches_model(ops: list[tuple[bool, int]]) -> None:
    fifo = Fifo(4)
    model: list[int] = []
    counter = 0
    for push, k in ops:
        if push:
            chunk = np.arange(counter, counter + k, dtype=np.int16)
            counter += k
            fifo.push(chunk)
            model.extend(chunk.tolist())
        else:
            out = np.zeros(k, dtype=np.int16)
            n = fifo.pop_into(out)
            assert out[:n].tolist() == model[:k]
            del model[:n]
        assert len(fifo) == len(model)
