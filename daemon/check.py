"""`pttd check` and `pttd devices`: what a user runs before starting the service."""

from __future__ import annotations

import argparse

import config
from config import EX_CONFIG, ConfigError
from config.apikey import resolve
from daemon.live import models

EX_OK = 0


def main(args: argparse.Namespace) -> int:
    """Validate the config, the API key source (not the key: no network) and the devices."""
    path = config.resolve_path(args.config)
    try:
        cfg = config.load(path)
        warnings = models.validate(cfg.live, cfg.path)
        key = resolve(cfg)
    except ConfigError as exc:
        print(f"pttd check: {exc}")
        return EX_CONFIG
    live, audio = cfg.live, cfg.audio
    print(f"config      {cfg.path}: ok")
    for warning in warnings:
        print(f"warning     {warning}")
    print(f"API key     from {key.source}")
    print(f"Live API    {live.endpoint} model {live.model}, {live.response_modality} replies, "
          f"voice {live.voice}, turn detection: {live.turn_detection}")
    rules = models.rules_for(live.model)
    if rules.known:
        limit = (f", sessions end after {rules.session_limit_s / 60:g} min"
                 if rules.session_limit_s else "")
        always = ", proactive audio always on" if rules.proactive_audio == "always" else ""
        print(f"model       {models.bare_name(live.model)}: the {rules.family} family"
              f"{always}{limit}")
    print(f"button      {cfg.button.pin if cfg.button.enabled else 'disabled'} "
          f"({cfg.button.mode}); LED {cfg.led.pin or 'none'}")
    print(f"control     {cfg.control.socket}")
    if args.no_devices:
        print("audio       devices not checked (--no-devices)")
    else:
        from hw.devices import probe

        for result in probe(audio):
            print(f"audio       {result.line()}")
            if not result.ok:
                print(f"pttd check: {cfg.path}: [audio] {result.kind}_device = "
                      f'"{result.device}" cannot be used as configured (see above); '
                      "`pttd devices` lists what ALSA offers")
                return EX_CONFIG
    print("pttd check: everything looks right")
    return EX_OK


def devices_main(args: argparse.Namespace) -> int:
    from hw.devices import list_pcms

    pcms = list_pcms()
    if not pcms:
        print("ALSA lists no PCMs: is a sound card connected, and is libasound2 installed?")
        return 1
    for pcm in pcms:
        print(pcm.line())
    return 0
