"""What ALSA offers (`pttd devices`) and what the configured devices grant (`pttd check`)."""

from __future__ import annotations

from dataclasses import dataclass

import alsaaudio

from config import AudioConfig
from config.rates import INPUT_RATE, OUTPUT_RATE
from hw.pcm import DeviceError, busy_note, open_pcm

KINDS = ("playback", "capture")
CHANNEL_CANDIDATES = (1, 2, 4, 6, 8)


@dataclass(frozen=True)
class PcmInfo:
    """One ALSA PCM name; rates and channels are filled in for hardware (hw:) devices only."""

    name: str
    kinds: tuple[str, ...]
    rates: str = ""
    channels: str = ""
    error: str = ""

    def line(self) -> str:
        text = f"{self.name}  ({', '.join(self.kinds)})"
        if self.rates or self.channels:
            text += f"  rates {self.rates}; channels {self.channels}"
        if self.error:
            text += f"  [{self.error}]"
        return text


@dataclass(frozen=True)
class Probe:
    """The outcome of briefly opening one configured device as the daemon would."""

    kind: str
    device: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{self.kind} device {self.device!r}: {'ok' if self.ok else 'FAILED'}, {self.detail}"


def _pcm_type(kind: str) -> int:
    return alsaaudio.PCM_CAPTURE if kind == "capture" else alsaaudio.PCM_PLAYBACK


def capabilities(name: str, kind: str) -> tuple[str, str]:
    """(rates, channels) a PCM accepts, e.g. ("44100, 48000 Hz", "1, 2").

    Channel counts are tried one by one from a short list: pyalsaaudio's getchannels() walks
    every count up to the device's maximum, which never ends on plugin devices.
    """
    pcm = alsaaudio.PCM(type=_pcm_type(kind), mode=alsaaudio.PCM_NONBLOCK, device=name)
    try:
        rates = pcm.getrates()
    finally:
        pcm.close()
    if isinstance(rates, tuple):
        rate_text = f"{rates[0]}-{rates[1]} Hz"
    elif isinstance(rates, list):
        rate_text = ", ".join(str(r) for r in rates) + " Hz"
    else:
        rate_text = f"{rates} Hz"
    channels = []
    for count in CHANNEL_CANDIDATES:
        try:
            pcm = alsaaudio.PCM(type=_pcm_type(kind), mode=alsaaudio.PCM_NONBLOCK, device=name,
                                channels=count)
        except alsaaudio.ALSAAudioError:
            continue
        if pcm.info()["channels"] == count:
            channels.append(str(count))
        pcm.close()
    return rate_text, ", ".join(channels) or "none of " + ", ".join(map(str, CHANNEL_CANDIDATES))


def list_pcms() -> list[PcmInfo]:
    """Every PCM name ALSA lists, with rates and channels for hardware devices."""
    kinds_of: dict[str, list[str]] = {}
    for kind in KINDS:
        for name in alsaaudio.pcms(_pcm_type(kind)):
            kinds_of.setdefault(name, []).append(kind)
    result = []
    for name, kinds in kinds_of.items():
        if not name.startswith("hw:"):
            result.append(PcmInfo(name, tuple(kinds)))
            continue
        rates, channels, errors = [], [], []
        for kind in kinds:
            try:
                r, c = capabilities(name, kind)
                rates.append(f"{kind} {r}")
                channels.append(f"{kind} {c}")
            except alsaaudio.ALSAAudioError as exc:
                errors.append(f"{kind}: {exc}{busy_note(kind, exc)}")
        result.append(PcmInfo(name, tuple(kinds), "; ".join(rates), "; ".join(channels),
                              "; ".join(errors)))
    return result


def probe(cfg: AudioConfig) -> list[Probe]:
    """Open the configured capture and playback devices as the daemon would, then close them."""
    wanted = {"capture": (cfg.capture_device, cfg.capture_rate, cfg.capture_channels, INPUT_RATE),
              "playback": (cfg.playback_device, cfg.playback_rate, 1, OUTPUT_RATE)}
    results = []
    for kind, (device, rate, channels, native) in wanted.items():
        try:
            pcm, granted = open_pcm(kind, device, rate, channels, cfg.period_ms)
        except DeviceError as exc:
            results.append(Probe(kind, device, False, str(exc)))
            continue
        pcm.close()
        detail = f"granted {granted.describe()}"
        if granted.rate != native:
            detail += f" (resampled {'to' if kind == 'capture' else 'from'} {native} Hz)"
        problem = ""
        if kind == "capture" and cfg.capture_channel >= granted.channels:
            problem = f"; capture_channel = {cfg.capture_channel} does not exist"
        elif kind == "playback" and granted.channels != 1:
            problem = "; not mono: use a plug device"
        results.append(Probe(kind, device, not problem, detail + problem))
    return results
