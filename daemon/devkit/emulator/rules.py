"""Per-model rules of the emulated service: the same table pttd reads (daemon/live/models.py),
seen from the server's side, so a setup the real service would close with 1007 is closed here.

    >>> from daemon.live.models import rules_for
    >>> rejected({"generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}},
    ...          rules_for("gemini-3.8-live"))
    'generationConfig.thinkingConfig'
"""

from __future__ import annotations

from typing import Any

from daemon.live.models import ModelRules
from daemon.live.protocol import lookup


def _get(obj: Any, *path: str) -> Any:
    """obj[path...] in either spelling, or None where any step is missing or not an object."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = lookup(obj, key)
    return obj


def rejected(setup: dict[str, Any], rules: ModelRules) -> str:
    """The first setup field `rules` rejects (its camelCase path), or "" if it takes them all."""
    thinking = _get(setup, "generationConfig", "thinkingConfig")
    if thinking is not None:
        level = _get(thinking, "thinkingLevel")
        if not (rules.thinking_levels or rules.thinking_budget):
            return "generationConfig.thinkingConfig"
        if level is not None and str(level).lower() not in rules.thinking_levels:
            return "generationConfig.thinkingConfig.thinkingLevel"
        if _get(thinking, "thinkingBudget") is not None and not rules.thinking_budget:
            return "generationConfig.thinkingConfig.thinkingBudget"
    if (_get(setup, "generationConfig", "enableAffectiveDialog") is not None
            and not rules.affective_dialog):
        return "generationConfig.enableAffectiveDialog"
    if _get(setup, "generationConfig", "responseModalities") == ["TEXT"] \
            and not rules.text_modality:
        return "generationConfig.responseModalities"
    proactive = _get(setup, "proactivity", "proactiveAudio")
    if lookup(setup, "proactivity") is not None and rules.proactive_audio == "unsupported":
        return "proactivity"
    if proactive is False and rules.proactive_audio == "always":
        return "proactivity.proactiveAudio"
    for where in ("inputAudioTranscription", "outputAudioTranscription"):
        if _get(setup, where, "customVocabulary") is not None and not rules.custom_vocabulary:
            return f"{where}.customVocabulary"
        if _get(setup, where, "languageCodes") is not None \
                and not rules.transcription_languages:
            return f"{where}.languageCodes"
    return ""
