"""The model table: what each family takes, what `pttd check` and start-up refuse, and what the
setup pttd builds for each model carries."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError, LiveConfig
from daemon.live import models
from daemon.live import protocol as p

ROOT = Path(__file__).resolve().parent.parent
PTTD = ROOT / ".venv" / "bin" / "pttd"
NATIVE = "models/gemini-2.5-flash-native-audio-preview-09-2025"
REJECTS = "rejects it (the service closes the session with 1007)"


def setup_body(cfg: LiveConfig) -> dict[str, Any]:
    return json.loads(p.setup(cfg))["setup"]


@pytest.mark.parametrize(("model", "family"), [
    ("gemini-3.8-live", "gemini-3.8-live"),
    ("models/gemini-3.8-live", "gemini-3.8-live"),
    ("gemini-3.8-live-001", "gemini-3.8-live"),
    ("gemini-3.8-live-extended-thinking", "gemini-3.8-live-extended-thinking"),
    ("gemini-3.1-flash-live-preview", "gemini-3.1-flash-live"),
    (NATIVE, "gemini-2.5-flash-native-audio"),
    ("gemini-live-2.5-flash-preview", "gemini-live-2.5-flash"),
    ("gemini-2.0-flash-live-001", "gemini-2.0-flash-live"),
    ("gemini-3.8-liver", "unknown"),
    ("tunedModels/my-voice", "unknown"),
])
def test_each_name_finds_its_family(model: str, family: str) -> None:
    assert models.rules_for(model).family == family


def test_the_default_model_is_gemini_3_8_live_and_its_defaults_pass() -> None:
    assert LiveConfig().model == models.DEFAULT_MODEL == "gemini-3.8-live"
    assert models.validate(LiveConfig(), "pttd.toml") == []


REFUSED = [
    ("gemini-3.8-live", {"affective_dialog": True},
     f"pttd.toml: [live] affective_dialog = true: gemini-3.8-live {REJECTS}; set it to false"),
    ("gemini-3.8-live", {"response_modality": "TEXT"},
     'pttd.toml: [live] response_modality = "TEXT": gemini-3.8-live replies in AUDIO only (the '
     'journal still gets the words from output_transcription); set it to "AUDIO"'),
    ("gemini-3.8-live", {"thinking_level": "low"},
     f'pttd.toml: [live] thinking_level = "low": gemini-3.8-live {REJECTS}: it takes no thinking '
     'config; set it to ""'),
    ("gemini-3.8-live", {"thinking_budget": 0},
     f"pttd.toml: [live] thinking_budget = 0: gemini-3.8-live {REJECTS}: it takes no thinking "
     "config; set it to -1"),
    ("gemini-3.8-live-extended-thinking", {"thinking_level": "minimal"},
     'pttd.toml: [live] thinking_level = "minimal": gemini-3.8-live-extended-thinking '
     f'{REJECTS}: it takes "high", "low", "medium"; set it to ""'),
    ("gemini-3.8-live-extended-thinking", {"thinking_budget": 1024},
     "pttd.toml: [live] thinking_budget = 1024: gemini-3.8-live-extended-thinking "
     f"{REJECTS}: it takes thinking_level instead; set it to -1"),
    ("gemini-3.1-flash-live-preview", {"proactive_audio": True},
     f"pttd.toml: [live] proactive_audio = true: gemini-3.1-flash-live-preview {REJECTS}; "
     "set it to false"),
    ("gemini-3.1-flash-live-preview", {"custom_vocabulary": ("Leeds",)},
     f"pttd.toml: [live] custom_vocabulary: gemini-3.1-flash-live-preview {REJECTS}; "
     "set it to []"),
    (NATIVE, {"thinking_level": "high"},
     "pttd.toml: [live] thinking_level = \"high\": "
     f"gemini-2.5-flash-native-audio-preview-09-2025 {REJECTS}: it takes no thinking config; "
     'set it to ""'),
    (NATIVE, {"transcription_languages": ("en-GB",)},
     "pttd.toml: [live] transcription_languages: gemini-2.5-flash-native-audio-preview-09-2025 "
     f"{REJECTS}; set it to []"),
    (NATIVE, {"response_modality": "TEXT"},
     'pttd.toml: [live] response_modality = "TEXT": gemini-2.5-flash-native-audio-preview-09-2025'
     " replies in AUDIO only (the journal still gets the words from output_transcription); "
     'set it to "AUDIO"'),
    ("gemini-live-2.5-flash-preview", {"affective_dialog": True},
     f"pttd.toml: [live] affective_dialog = true: gemini-live-2.5-flash-preview {REJECTS}; "
     "set it to false"),
]


@pytest.mark.parametrize(("model", "overrides", "message"), REFUSED)
def test_what_a_model_rejects_is_refused_naming_key_and_model(
        model: str, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        models.validate(replace(LiveConfig(model=model), **overrides), "pttd.toml")
    assert str(err.value) == message


@pytest.mark.parametrize(("model", "overrides"), [
    ("gemini-3.8-live", {"proactive_audio": True}),     # always on: accepted, never sent
    ("gemini-3.8-live", {"custom_vocabulary": ("Siobhan",), "transcription_languages": ("cy",)}),
    ("gemini-3.8-live-extended-thinking", {"thinking_level": "high"}),
    ("gemini-3.1-flash-live-preview", {"thinking_level": "minimal"}),
    (NATIVE, {"thinking_budget": 0, "affective_dialog": True, "proactive_audio": True}),
    ("gemini-live-2.5-flash-preview", {"response_modality": "TEXT"}),
])
def test_what_a_model_takes_passes(model: str, overrides: dict[str, Any]) -> None:
    assert models.validate(replace(LiveConfig(model=model), **overrides), "pttd.toml") == []


def test_an_unknown_model_passes_everything_through_with_one_warning() -> None:
    cfg = LiveConfig(model="gemini-9-live", affective_dialog=True, thinking_level="high",
                     thinking_budget=512, proactive_audio=True, custom_vocabulary=("Pi",),
                     transcription_languages=("en",), response_modality="AUDIO")
    warnings = models.validate(cfg, "pttd.toml")
    assert len(warnings) == 1
    assert warnings[0].startswith('[live] model = "gemini-9-live" is not a model pttd knows')
    body = setup_body(cfg)
    gen = body["generationConfig"]
    assert gen["thinkingConfig"] == {"thinkingLevel": "HIGH", "thinkingBudget": 512}
    assert gen["enableAffectiveDialog"] is True
    assert body["proactivity"] == {"proactiveAudio": True}
    assert body["inputAudioTranscription"] == {"languageCodes": ["en"],
                                               "customVocabulary": ["Pi"]}


def test_gemini_3_8_setup_never_carries_what_it_rejects() -> None:
    """Even when the config asks (a reload that skipped validation, or proactive_audio = true),
    the setup for 3.8 has no thinking config, no affective dialog and no proactivity at all."""
    cfg = LiveConfig(model="gemini-3.8-live", thinking_budget=0, thinking_level="low",
                     affective_dialog=True, proactive_audio=True)
    body = setup_body(cfg)
    assert "thinkingConfig" not in body["generationConfig"]
    assert "enableAffectiveDialog" not in body["generationConfig"]
    assert "proactivity" not in body
    assert p.choose_api_version(cfg)[0] == "v1beta"


def test_thinking_level_goes_in_as_the_enum_name() -> None:
    body = setup_body(LiveConfig(model="gemini-3.8-live-extended-thinking",
                                 thinking_level="medium"))
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "MEDIUM"}
    body = setup_body(LiveConfig(model=NATIVE, thinking_budget=0))
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


def test_vocabulary_languages_and_trigger_tokens_go_where_the_sdk_puts_them() -> None:
    cfg = LiveConfig(custom_vocabulary=("Siobhan", "Llanelli"),
                     transcription_languages=("en-GB", "cy"), compression_trigger_tokens=25600)
    body = setup_body(cfg)
    assert body["inputAudioTranscription"] == {"languageCodes": ["en-GB", "cy"],
                                               "customVocabulary": ["Siobhan", "Llanelli"]}
    assert body["outputAudioTranscription"] == {}
    assert body["contextWindowCompression"] == {"slidingWindow": {}, "triggerTokens": 25600}
    # The native-audio models do not take them: never sent there.
    body = setup_body(replace(cfg, model=NATIVE))
    assert body["inputAudioTranscription"] == {}


def _pttd(tmp_path: Path, command: str, live: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / "pttd.toml"
    conf.write_text(f'[live]\napi_key_file = "{tmp_path / "key"}"\n{live}\n'
                    f'[control]\nsocket = "{tmp_path / "ctl.sock"}"\n[button]\nenabled = false\n')
    (tmp_path / "key").write_text("k" * 39)
    (tmp_path / "key").chmod(0o600)
    args = [str(PTTD), command, "--config", str(conf)]
    if command == "check":
        args.append("--no-devices")
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("command", ["check", "run"])
def test_check_and_start_up_refuse_with_ex_config(tmp_path: Path, command: str) -> None:
    res = _pttd(tmp_path, command, "affective_dialog = true")
    assert res.returncode == 78, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert (f"{tmp_path / 'pttd.toml'}: [live] affective_dialog = true: gemini-3.8-live "
            f"{REJECTS}; set it to false") in out
    assert "Traceback" not in out


def test_check_warns_once_about_an_unknown_model(tmp_path: Path) -> None:
    res = _pttd(tmp_path, "check", 'model = "gemini-9-live"')
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("is not a model pttd knows") == 1


def test_check_says_what_it_knows_of_the_model(tmp_path: Path) -> None:
    res = _pttd(tmp_path, "check", "")
    assert res.returncode == 0, res.stdout + res.stderr
    assert ("model       gemini-3.8-live: the gemini-3.8-live family, proactive audio always on, "
            "sessions end after 58 min") in res.stdout
    assert "is not a model pttd knows" not in res.stdout
