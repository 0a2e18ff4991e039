"""What each family of Live models accepts, so pttd never sends what a model rejects.

The Live API closes a session with 1007 when its setup carries an option the model does not take
(a thinking config on `gemini-3.8-live`, `proactive_audio: false` where proactive audio is always
on), so the rules are looked up once, by model name, before a setup is built or a config passes
`pttd check`. A name no family matches gets `UNKNOWN`: every option is passed through as
configured, and the caller warns once.

    >>> rules_for("models/gemini-3.8-live").thinking_levels
    frozenset()
    >>> rules_for("gemini-3.8-live-extended-thinking").thinking_levels == {"low", "medium", "high"}
    True
    >>> validate(LiveConfig(model="gemini-3.8-live", thinking_level="low"), "pttd.toml")
    Traceback (most recent call last):
    config.ConfigError: pttd.toml: [live] thinking_level = "low": gemini-3.8-live rejects it \
(the service closes the session with 1007): it takes no thinking config; set it to ""
"""

from __future__ import annotations

from dataclasses import dataclass

from config import ConfigError, LiveConfig

DEFAULT_MODEL = "gemini-3.8-live"


@dataclass(frozen=True, slots=True)
class ModelRules:
    """The options one family of models takes, and what its server does.

    `session_limit_s` is how long the service keeps one session open before it closes it
    (None: only the connection's own limit and goAway apply); the client replaces the session
    between turns before then. `proactive_audio` is "optional" (sent when configured), "always"
    (on by itself: `proactivity` is never sent, and `false` would be an error) or "unsupported".
    """

    family: str
    known: bool = True
    thinking_levels: frozenset[str] = frozenset()
    thinking_budget: bool = False
    affective_dialog: bool = False
    proactive_audio: str = "optional"
    text_modality: bool = False
    non_blocking_tools: bool = False
    client_content_roles: bool = False
    custom_vocabulary: bool = False
    transcription_languages: bool = False
    sends_interrupted: bool = True
    waiting_for_input: bool = False
    interaction_status: bool = False
    session_limit_s: float | None = None


_LEVELS = frozenset({"low", "medium", "high"})
_3_8 = {"proactive_audio": "always", "non_blocking_tools": True, "client_content_roles": True,
        "custom_vocabulary": True, "transcription_languages": True, "waiting_for_input": True,
        "interaction_status": True, "session_limit_s": 58 * 60}

# Longest prefix first: "gemini-3.8-live-extended-thinking" must win over "gemini-3.8-live".
_FAMILIES: tuple[tuple[str, ModelRules], ...] = (
    ("gemini-3.8-live-extended-thinking", ModelRules(
        family="gemini-3.8-live-extended-thinking", thinking_levels=_LEVELS, **_3_8)),
    ("gemini-3.8-live", ModelRules(family="gemini-3.8-live", **_3_8)),
    ("gemini-3.1-flash-live", ModelRules(
        family="gemini-3.1-flash-live", thinking_levels=frozenset({"minimal", *_LEVELS}),
        proactive_audio="unsupported", waiting_for_input=True)),
    ("gemini-2.5-flash-native-audio", ModelRules(
        family="gemini-2.5-flash-native-audio", thinking_budget=True, affective_dialog=True,
        non_blocking_tools=True, sends_interrupted=False)),
    ("gemini-live-2.5-flash", ModelRules(
        family="gemini-live-2.5-flash", proactive_audio="unsupported", text_modality=True,
        non_blocking_tools=True)),
    ("gemini-2.0-flash-live", ModelRules(
        family="gemini-2.0-flash-live", text_modality=True, proactive_audio="unsupported")),
)

UNKNOWN = ModelRules(
    family="unknown", known=False, thinking_levels=frozenset({"minimal", *_LEVELS}),
    thinking_budget=True, affective_dialog=True, text_modality=True, non_blocking_tools=True,
    client_content_roles=True, custom_vocabulary=True, transcription_languages=True)


def bare_name(model: str) -> str:
    """The model's own name, without the `models/` or `tunedModels/` resource prefix."""
    return model.rsplit("/", 1)[-1]


def rules_for(model: str) -> ModelRules:
    """The rules of the family `model` belongs to, or UNKNOWN (everything passed through)."""
    name = bare_name(model)
    for prefix, rules in _FAMILIES:
        if name == prefix or name.startswith(prefix + "-"):
            return rules
    return UNKNOWN


def proactive(cfg: LiveConfig) -> bool:
    """Whether the model may choose not to answer (proactive audio is on for this session)."""
    mode = rules_for(cfg.model).proactive_audio
    return mode == "always" or (mode == "optional" and cfg.proactive_audio)


def _refusals(cfg: LiveConfig, rules: ModelRules) -> list[str]:
    """`key = value: why and what to do` for every configured option the model rejects."""
    name = bare_name(cfg.model)
    rejects = f"{name} rejects it (the service closes the session with 1007)"
    out: list[str] = []
    if cfg.affective_dialog and not rules.affective_dialog:
        out.append(f"affective_dialog = true: {rejects}; set it to false")
    if cfg.proactive_audio and rules.proactive_audio == "unsupported":
        out.append(f"proactive_audio = true: {rejects}; set it to false")
    if cfg.response_modality == "TEXT" and not rules.text_modality:
        out.append(f'response_modality = "TEXT": {name} replies in AUDIO only (the journal '
                   'still gets the words from output_transcription); set it to "AUDIO"')
    if cfg.thinking_budget >= 0 and not rules.thinking_budget:
        how = ("it takes thinking_level instead" if rules.thinking_levels
               else "it takes no thinking config")
        out.append(f"thinking_budget = {cfg.thinking_budget}: {rejects}: {how}; set it to -1")
    if cfg.thinking_level and cfg.thinking_level not in rules.thinking_levels:
        how = ("it takes " + ", ".join(f'"{v}"' for v in sorted(rules.thinking_levels))
               if rules.thinking_levels else "it takes no thinking config")
        out.append(f'thinking_level = "{cfg.thinking_level}": {rejects}: {how}; set it to ""')
    if cfg.thinking_level and cfg.thinking_budget >= 0 and rules.known:
        out.append(f"thinking_budget = {cfg.thinking_budget}: {name} takes thinking_level or "
                   "thinking_budget, not both; set thinking_budget to -1")
    if cfg.custom_vocabulary and not rules.custom_vocabulary:
        out.append(f"custom_vocabulary: {rejects}; set it to []")
    if cfg.transcription_languages and not rules.transcription_languages:
        out.append(f"transcription_languages: {rejects}; set it to []")
    return out


def validate(cfg: LiveConfig, path: str) -> list[str]:
    """Refuse what cfg.model rejects: a ConfigError naming the file, the key and the model.

    Returns the warnings to log once: an unknown model gets every option passed through.
    """
    rules = rules_for(cfg.model)
    refused = _refusals(cfg, rules)
    if refused:
        raise ConfigError(f"{path}: [live] {refused[0]}")
    if not rules.known:
        return [f'[live] model = "{cfg.model}" is not a model pttd knows: every option is sent '
                "as configured, and one the model rejects closes the session with 1007 "
                f"(known: {', '.join(prefix for prefix, _ in _FAMILIES)})"]
    return []
