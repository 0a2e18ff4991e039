"""SIGHUP: which changed keys apply live, which need a restart, and what the journal says
(daemon/reloading.py)."""

from __future__ import annotations

import dataclasses
import logging

import config
from config import Config
from daemon.reloading import needs_restart, report

BASE = config.parse("", "/etc/pttd/pttd.toml")


def changed(section: str, **keys: object) -> Config:
    return dataclasses.replace(BASE, **{section: dataclasses.replace(getattr(BASE, section),
                                                                     **keys)})


def test_an_unchanged_config_needs_nothing() -> None:
    assert needs_restart(BASE, BASE) == []
    assert report(BASE, BASE, ["model warning"]) == [
        (logging.INFO, "config reloaded from /etc/pttd/pttd.toml (volume, earcons, log level "
                       "and session settings apply now)")]


def test_volume_and_session_settings_apply_live() -> None:
    new = changed("audio", volume=0.5)
    new = dataclasses.replace(new, live=dataclasses.replace(new.live, voice="Puck"))
    assert new != BASE and needs_restart(BASE, new) == []


def test_audio_devices_the_api_key_and_fixed_sections_need_a_restart() -> None:
    new = changed("audio", preroll_ms=BASE.audio.preroll_ms + 100, volume=0.5)
    new = dataclasses.replace(
        new, live=dataclasses.replace(new.live, api_key_file="/etc/pttd/other"),
        button=dataclasses.replace(new.button, pin="GPIO27"))
    assert needs_restart(BASE, new) == ["[live] api_key_file", "[button]", "[audio] preroll_ms"]
    level, line = report(BASE, new, [])[-1]
    assert level == logging.WARNING
    assert line == ("these changes need `systemctl restart pttd`: [live] api_key_file, "
                    "[button], [audio] preroll_ms")


def test_model_warnings_are_said_again_only_when_the_model_changed() -> None:
    new = changed("live", model="another-live-model")
    lines = report(BASE, new, ["w1", "w2"])
    assert lines[:2] == [(logging.WARNING, "w1"), (logging.WARNING, "w2")]
    assert lines[2][0] == logging.INFO and len(lines) == 3
    assert all(line not in ("w1", "w2") for _, line in report(BASE, BASE, ["w1", "w2"]))
