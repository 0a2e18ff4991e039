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
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "gemini-3.8-live"


@dataclass(frozen=True, slots=True)
class ModelRules:
    """The options one family of models takes.

    `session_limit_s` is how long the service keeps one session open before it closes it
    (None: only the connection's own limit and goAway apply); the client replaces the session
    between turns before then.
    """

    family: str
    known: bool = True
    thinking_levels: frozenset[str] = frozenset()
    thinking_budget: bool = False
    affective_dialog: bool = False
    proactive_audio: str = "optional"  # "optional" | "always" (never sent) | "unsupported"
    text_modality: bool = False
    non_blocking_tools: bool = False
    client_content_roles: bool = False
    custom_vocabulary: bool = False
    sends_interrupted: bool = True
    session_limit_s: float | None = None


_LEVELS = frozenset({"low", "medium", "high"})

# Longest prefix first: "gemini-3.8-live-extended-thinking" must win over "gemini-3.8-live".
_FAMILIES: tuple[tuple[str, ModelRules], ...] = (
    ("gemini-3.8-live-extended-thinking", ModelRules(
        family="gemini-3.8-live-extended-thinking", thinking_levels=_LEVELS,
        proactive_audio="always", non_blocking_tools=True, client_content_roles=True,
        custom_vocabulary=True, session_limit_s=58 * 60)),
    ("gemini-3.8-live", ModelRules(
        family="gemini-3.8-live", proactive_audio="always", non_blocking_tools=True,
        client_content_roles=True, custom_vocabulary=True, session_limit_s=58 * 60)),
    ("gemini-3.1-flash-live", ModelRules(
        family="gemini-3.1-flash-live", thinking_levels=frozenset({"minimal", *_LEVELS}),
        proactive_audio="unsupported")),
    ("gemini-2.5-flash-native-audio", ModelRules(
        family="gemini-2.5-flash-native-audio", thinking_budget=True, affective_dialog=True,
        non_blocking_tools=True, sends_interrupted=False)),
    ("gemini-live-2.5-flash", ModelRules(
        family="gemini-live-2.5-flash", thinking_budget=True, text_modality=True,
        non_blocking_tools=True)),
    ("gemini-2.0-flash-live", ModelRules(
        family="gemini-2.0-flash-live", text_modality=True, proactive_audio="unsupported")),
)

UNKNOWN = ModelRules(
    family="unknown", known=False, thinking_levels=_LEVELS, thinking_budget=True,
    affective_dialog=True, text_modality=True, non_blocking_tools=True,
    client_content_roles=True, custom_vocabulary=True)


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
