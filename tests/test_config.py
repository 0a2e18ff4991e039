"""Config files good and bad, with the exact messages users see."""

from __future__ import annotations

import contextlib
import dataclasses
import string
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import config
from config import Config, ConfigError, parse

SHIPPED = Path(config.__file__).with_name("pttd.toml")


def test_shipped_file_is_valid_and_equals_the_defaults() -> None:
    cfg = config.load(SHIPPED)
    assert dataclasses.replace(cfg, path="") == Config()


def test_shipped_file_documents_every_key() -> None:
    text = SHIPPED.read_text()
    for section in dataclasses.fields(Config):
        if section.name == "path":
            continue
        assert f"[{section.name}]" in text
        for key in dataclasses.fields(get_type_hints(Config)[section.name]):
            shown = f"{key.name} =" in text or f"[[{section.name}.{key.name}]]" in text
            assert shown, f"[{section.name}] {key.name} is not documented"


def test_empty_file_gives_defaults() -> None:
    assert parse("", "x.toml") == Config(path="x.toml")


GOOD = [
    ('[audio]\nperiod_ms = 40\n', lambda c: c.audio.period_ms == 40),
    ('[audio]\nvolume = 2\n', lambda c: c.audio.volume == 2.0),
    ('[audio]\ntail_ms = 500\n', lambda c: c.audio.tail_ms == 500),
    ('[live]\nendpoint = "ws://127.0.0.1:8765"\n', lambda c: c.live.endpoint.startswith("ws:")),
    ('[live]\nendpoint = "ws://[::1]:9"\n', lambda c: True),
    ('[live]\nendpoint = "ws://localhost:9"\n', lambda c: True),
    ('[live]\nvoice = "Puck"\nresponse_modality = "TEXT"\n',
     lambda c: c.live.voice == "Puck" and c.live.response_modality == "TEXT"),
    ('[[live.context]]\nrole = "user"\ntext = "I am Sam"\n[[live.context]]\nrole = "model"\n'
     'text = "Hi Sam"\n', lambda c: [t.text for t in c.live.context] == ["I am Sam", "Hi Sam"]),
    ('[audio]\ncapture_channels = 2\ncapture_channel = 1\n',
     lambda c: c.audio.capture_channel == 1),
    ('[button]\nmode = "toggle"\nenabled = false\n', lambda c: c.button.mode == "toggle"),
    ('[live]\nthinking_level = "high"\n', lambda c: c.live.thinking_level == "high"),
    ('[live]\ncustom_vocabulary = ["Siobhan", "Raspberry Pi"]\n'
     'transcription_languages = ["en-GB", "cy", "zh-Hant-TW"]\n',
     lambda c: c.live.custom_vocabulary == ("Siobhan", "Raspberry Pi")
     and c.live.transcription_languages == ("en-GB", "cy", "zh-Hant-TW")),
    ("[live]\ncompression_trigger_tokens = 25600\n",
     lambda c: c.live.compression_trigger_tokens == 25600),
]


@pytest.mark.parametrize(("text", "check"), GOOD)
def test_good_files(text: str, check: Any) -> None:
    assert check(parse(text, "pttd.toml"))


BAD = [
    ("[audio]\nperiod_ms = 7\n",
     "pttd.toml: [audio] period_ms = 7: must be one of 10, 20, 40, 50, 100, 200"),
    ("[audio]\nperod_ms = 20\n",
     "pttd.toml: [audio]: unknown key 'perod_ms' (did you mean 'period_ms'?)"),
    ("[audoi]\n", "pttd.toml: unknown key 'audoi' (did you mean 'audio'?)"),
    ("[nothing]\n", "pttd.toml: unknown key 'nothing'; known: live, audio, button, led, "
                    "earcons, control, tools, state, log"),
    ("[audio]\npreroll_ms = 5000\n",
     "pttd.toml: [audio] preroll_ms = 5000: must be a whole number from 0 to 2000"),
    ('[audio]\npreroll_ms = "300"\n',
     'pttd.toml: [audio] preroll_ms = "300": must be a whole number from 0 to 2000'),
    ("[audio]\npreroll_ms = 300.5\n",
     "pttd.toml: [audio] preroll_ms = 300.5: must be a whole number from 0 to 2000"),
    ("[audio]\ntail_ms = 501\n",
     "pttd.toml: [audio] tail_ms = 501: must be a whole number from 0 to 500"),
    ("[audio]\ntail_ms = -1\n",
     "pttd.toml: [audio] tail_ms = -1: must be a whole number from 0 to 500"),
    ("[audio]\nvolume = -1\n", "pttd.toml: [audio] volume = -1.0: must be a number from 0 to 4"),
    ("[audio]\nvolume = nan\n", "pttd.toml: [audio] volume = nan: must be a number from 0 to 4"),
    ("[audio]\nvolume = true\n", "pttd.toml: [audio] volume = true: must be a number from 0 to 4"),
    ('[live]\nvoice = "Bob"\n', 'pttd.toml: [live] voice = "Bob": must be one of "Puck", '
                                '"Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr"'),
    ("[earcons]\nenabled = 1\n", "pttd.toml: [earcons] enabled = 1: must be true or false"),
    ('[log]\nlevel = "verbose"\n', 'pttd.toml: [log] level = "verbose": must be one of "debug", '
                                   '"info", "warning", "error"'),
    ('[live]\nendpoint = "ws://example.com"\n',
     'pttd.toml: [live] endpoint = "ws://example.com": ws:// is only allowed to a loopback host '
     "(127.0.0.1, ::1, localhost); use wss://"),
    ('[live]\nendpoint = "https://example.com"\n',
     'pttd.toml: [live] endpoint = "https://example.com": must start with wss:// (or ws:// for a '
     "loopback host)"),
    ("[live]\nreconnect_min_s = 10\nreconnect_max_s = 5\n",
     "pttd.toml: [live] reconnect_max_s = 5: must not be below reconnect_min_s (10)"),
    ("[audio]\ncapture_channel = 1\n",
     "pttd.toml: [audio] capture_channel = 1: must be -1 (mix all) or below capture_channels (1)"),
    ("audio = 3\n", "pttd.toml: [audio] must be a table, got 3"),
    ('[[live.context]]\nrole = "robot"\n',
     'pttd.toml: [live.context] role = "robot": must be one of "user", "model"'),
    ('[live]\ncontext = "hi"\n', "pttd.toml: [live] context: must be a list of [[live.context]] "
                                 "tables"),
    ('[live]\nthinking_level = "max"\n', 'pttd.toml: [live] thinking_level = "max": must be one '
                                         'of "", "minimal", "low", "medium", "high"'),
    ('[live]\ncustom_vocabulary = "Leeds"\n', 'pttd.toml: [live] custom_vocabulary = "Leeds": '
                                             'must be a list of phrases, e.g. ["Raspberry Pi", '
                                             '"Leeds"]'),
    ("[live]\ncustom_vocabulary = [3]\n", "pttd.toml: [live] custom_vocabulary: 3 is not a "
                                          "phrase (each entry must be a non-empty string on one "
                                          "line)"),
    ('[live]\ncustom_vocabulary = ["a\\nb"]\n', 'pttd.toml: [live] custom_vocabulary: "a\\nb" '
                                                'is not a phrase (each entry must be a non-empty '
                                                "string on one line)"),
    ('[live]\ncustom_vocabulary = ["Pi", "Pi"]\n',
     'pttd.toml: [live] custom_vocabulary: "Pi" is listed twice'),
    ('[live]\ntranscription_languages = "en"\n',
     'pttd.toml: [live] transcription_languages = "en": must be a list of BCP-47 language tags, '
     'e.g. ["en-GB", "cy"]'),
    ('[live]\ntranscription_languages = ["English"]\n',
     'pttd.toml: [live] transcription_languages: "English" is not a BCP-47 language tag (e.g. '
     '"en", "en-GB", "pt-BR")'),
    ("[live]\ncompression_trigger_tokens = -5\n",
     "pttd.toml: [live] compression_trigger_tokens = -5: must be a whole number from 0 to "
     "1048576"),
    ("[live]\ncompression_trigger_tokens = 9000\ncontext_compression = false\n",
     "pttd.toml: [live] compression_trigger_tokens = 9000: needs context_compression = true"),
    ('[live]\ninput_transcription = false\ncustom_vocabulary = ["Pi"]\n',
     "pttd.toml: [live] custom_vocabulary: biases the transcription of what you say, so it needs "
     "input_transcription = true"),
    ('[live]\ninput_transcription = false\ntranscription_languages = ["en"]\n',
     "pttd.toml: [live] transcription_languages: hints for the transcription of what you say, so "
     "it needs input_transcription = true"),
    ("[audio\n", "pttd.toml: TOML syntax error: Expected ']' at the end of a table declaration "
                 "(at line 1, column 7)"),
    ("[audio]\nperiod_ms = 20\nperiod_ms = 40\n",
     "pttd.toml: TOML syntax error: Cannot overwrite a value (at line 3, column 15)"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_files_name_file_key_value_and_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(text, "pttd.toml")
    assert str(err.value) == message


def test_load_reports_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        config.load(tmp_path / "missing.toml")
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"bin\.toml: cannot read config file"):
        config.load(bad)


def test_path_resolution_and_env_overrides(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[log]\nlevel = "info"\n[audio]\ncapture_device = "hw:1"\n')
    monkeypatch.setenv("PTTD_CONFIG", str(path))
    assert config.resolve_path(None) == path
    assert config.resolve_path("/x.toml") == Path("/x.toml")
    monkeypatch.setenv("PTTD_LOG_LEVEL", "debug")
    monkeypatch.setenv("PTTD_PLAYBACK_DEVICE", "plughw:2")
    cfg = config.load()
    assert cfg.log.level == "debug"
    assert cfg.audio.playback_device == "plughw:2"
    assert cfg.audio.capture_device == "hw:1"
    monkeypatch.setenv("PTTD_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError, match=r'\[log\] level = "loud" \(from \$PTTD_LOG_LEVEL\)'):
        config.load()
    monkeypatch.setenv("PTTD_LOG_LEVEL", "info")
    monkeypatch.setenv("PTTD_ENDPOINT", "ws://speaker.lan/\nx")
    with pytest.raises(ConfigError) as err:
        config.load()
    assert str(err.value).count("\n") == 0
    assert r'endpoint = "ws://speaker.lan/\nx" (from $PTTD_ENDPOINT)' in str(err.value)
    monkeypatch.delenv("PTTD_ENDPOINT")
    monkeypatch.delenv("PTTD_CONFIG")
    assert config.resolve_path(None) == config.DEFAULT_PATH


# ------------------------------------------------------------ fuzz: Config or ConfigError only

def _toml_value() -> st.SearchStrategy[str]:
    text = st.text(alphabet=string.printable, max_size=20)
    return st.one_of(
        st.integers(-10**6, 10**6).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(
            lambda f: "nan" if f != f else ("inf" if f == float("inf") else
                                            "-inf" if f == float("-inf") else repr(f))),
        st.booleans().map(lambda b: "true" if b else "false"),
        text.map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"')
                 .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
                 .replace("\x0b", "\\u000b").replace("\x0c", "\\f") + '"'),
        st.just("[1, 2]"), st.just("{a = 1}"), st.just("1979-05-27"),
    )


KEYS = [(s.name, k.name) for s in dataclasses.fields(Config) if s.name != "path"
        for k in dataclasses.fields(get_type_hints(Config)[s.name])]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEYS), _toml_value()), max_size=6))
def test_random_values_for_every_key_give_config_or_config_error(
        pairs: list[tuple[tuple[str, str], str]]) -> None:
    sections: dict[str, dict[str, str]] = {}
    for (section, key), value in pairs:
        sections.setdefault(section, {})[key] = value
    text = "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items())
                   for s, kv in sections.items())
    try:
        cfg = parse(text, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml")
    else:
        assert isinstance(cfg, Config)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_gives_config_or_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse(text, "fuzz.toml")
