"""The timer table's rules, the duration syntax, the volume curve and the state file: pure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from daemon.actions import volume
from daemon.actions.state import Saved, StateStore, decode, encode
from daemon.actions.timers import (
    MAX_TIMERS,
    Timer,
    TimerError,
    TimerTable,
    human,
    parse_duration,
    restore,
)


def test_timers_fire_in_deadline_order_and_only_when_due() -> None:
    t = TimerTable()
    t.add(600, "tea", now=0.0)
    t.add(60, "eggs", now=0.0)
    t.add(300, "", now=10.0)
    assert t.next_due() == 60.0
    assert t.pop_due(59.9) == []
    assert [x.label for x in t.pop_due(60.0)] == ["eggs"]
    assert [x.label for x in t.pop_due(10_000.0)] == ["", "tea"]
    assert t.next_due() is None


def test_same_label_replaces_case_and_spacing_aside() -> None:
    t = TimerTable()
    t.add(600, "Earl  Grey", now=0.0)
    assert t.replaced("earl grey") is not None
    t.add(120, "earl grey", now=0.0)
    assert [(x.label, x.due) for x in t.timers] == [("earl grey", 120.0)]


def test_cancel_by_label_the_only_one_or_the_next() -> None:
    t = TimerTable()
    with pytest.raises(TimerError, match="there are no timers"):
        t.cancel(None)
    t.add(600, "tea", now=0.0)
    assert t.cancel(None).label == "tea"
    t.add(600, "tea", now=0.0)
    t.add(60, "pasta", now=0.0)
    assert t.cancel("").label == "pasta"        # the next one due
    t.add(60, "pasta", now=0.0)
    assert t.cancel("TEA").label == "tea"
    with pytest.raises(TimerError, match="no timer called 'rice'; the timers are: pasta"):
        t.cancel("rice")


def test_a_unique_partial_label_matches_an_ambiguous_one_does_not() -> None:
    t = TimerTable()
    t.add(60, "green tea", now=0.0)
    assert t.cancel("tea").label == "green tea"
    t.add(60, "green tea", now=0.0)
    t.add(60, "black tea", now=0.0)
    with pytest.raises(TimerError):
        t.cancel("tea")


def test_limits_length_and_count() -> None:
    t = TimerTable()
    for bad in (0, 0.5, 24 * 3600 + 1):
        with pytest.raises(TimerError, match="1 second to 24 hours"):
            t.add(bad, "", now=0.0)
    for i in range(MAX_TIMERS):
        t.add(10 + i, f"t{i}", now=0.0)
    with pytest.raises(TimerError, match="already 20 timers"):
        t.add(10, "one more", now=0.0)
    t.add(99, "t3", now=0.0)  # replacing is always allowed


def test_listing_counts_down() -> None:
    t = TimerTable()
    t.add(90, "tea", now=100.0)
    assert t.listing(130.0) == [{"label": "tea", "seconds": 90.0, "left_s": 60.0, "due": 190.0}]


def test_restore_rings_the_recently_missed_and_drops_the_long_missed() -> None:
    timers = (Timer("later", 2000.0, 60), Timer("just", 990.0, 60), Timer("old", 100.0, 60))
    table, late, missed = restore(timers, now=1000.0, grace_s=300.0)
    assert [t.label for t in table.timers] == ["later"]
    assert [t.label for t in late] == ["just"]
    assert [t.label for t in missed] == ["old"]


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("1h", 3600), ("2m30s", 150),
    ("1.5h", 5400), ("10M", 600)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "10x", "1h1h", "10 m", "1s30", "-5", "10m tea"])
def test_bad_durations_say_what_works(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 90, 90s, 10m or 1h30m"):
        parse_duration(text)


def test_human_durations() -> None:
    assert human(5400) == "1 hour 30 minutes"
    assert human(61) == "1 minute 1 second"
    assert human(0.2) == "0 seconds"


def test_volume_steps_and_gain_curve() -> None:
    assert volume.set_percent(130) == 1.0 and volume.set_percent(-3) == 0.0
    assert volume.change(0.25, 10) == 0.35
    assert volume.change(0.05, -20) == 0.0
    assert volume.gain(1.0, base=1.0) == 1.0        # 100 % leaves samples untouched
    assert volume.gain(0.5, base=2.0) == 0.5
    assert volume.gain(0.0, base=1.0) == 0.0
    # The alarm's floor does not follow a small [audio] volume down.
    assert volume.alarm_gain(0.1) == volume.alarm_gain(1.0) == pytest.approx(0.49)


def test_state_round_trip_and_bad_entries_are_skipped() -> None:
    saved = Saved(0.4, (Timer("tea", 1.5e9, 600.0),))
    assert decode(encode(saved)) == (saved, [])
    body = {"volume": 7, "timers": [{"label": "tea", "due": 5, "seconds": 60}, {"due": "x"}]}
    got, problems = decode(json.dumps(body))
    assert got == Saved(None, (Timer("tea", 5.0, 60.0),))
    assert problems == ["volume 7 is not 0.0-1.0", "timer entry {'due': 'x'} is malformed"]


def test_state_file_is_replaced_whole_and_a_broken_one_is_set_aside(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    assert store.load() == Saved()
    store.save(Saved(0.3, (Timer("", 9.0, 1.0),)))
    assert store.load() == Saved(0.3, (Timer("", 9.0, 1.0),))
    assert sorted(os.listdir(tmp_path / "state")) == ["state.json"]  # no temporary left
    store.path.write_text("{not json")
    assert store.load() == Saved()
    assert (tmp_path / "state" / "state.json.bad").read_text() == "{not json"
