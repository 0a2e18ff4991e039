"""The collector schedule of `pttd run`: held off while starting, then one pass and a freeze."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from daemon import heap


class _Node:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def restore_gc() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.enable()


def test_hold_keeps_cycles_until_settle_frees_them_and_freezes_the_rest(restore_gc: None) -> None:
    heap.hold()
    assert not gc.isenabled()
    cycle = _Node()
    gone = weakref.ref(cycle)
    kept = [_Node()]
    del cycle
    for _ in range(50_000):  # far past every generation's threshold
        [].append([])
    assert gone() is not None, "a collection ran while held"
    heap.settle()
    assert gone() is None
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept)
    assert not any(obj is kept[0] for obj in gc.get_objects())


def test_summary_reports_the_collector_state(restore_gc: None) -> None:
    heap.settle()
    summary = heap.summary()
    assert summary["enabled"] is True
    assert summary["frozen"] == gc.get_freeze_count() > 0
    assert len(summary["collections"]) == 3
    assert summary["collections"][2] >= 1
