"""The Gemini Live API wire protocol, sans I/O: client messages out, typed server events in.

Nothing here touches a socket, asyncio or websockets, so every rule is a plain unit test; the
client (client.py) only moves the frames this module builds and the frames frames.py parses
(re-exported here, so `protocol` is the one name the client needs). Builders return UTF-8 bytes,
each frame built once, ready to go out as a TEXT message (which is what the service expects).
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config import LiveConfig
from config.rates import INPUT_RATE, OUTPUT_RATE
from daemon.live.events import (
    AudioChunk,
    Event,
    FunctionCall,
    GenerationComplete,
    GoAway,
    InputTranscription,
    Interrupted,
    OutputTranscription,
    SessionResumptionUpdate,
    SetupComplete,
    TextPart,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    Unknown,
    UsageMetadata,
)
from daemon.live.frames import (
    ProtocolError,
    b64decode,
    lookup,
    parse_duration,
    parse_server_frame,
    rate_from_mime,
)
from daemon.live.models import ModelRules, rules_for

__all__ = [
    "AUDIO_MIME", "INPUT_RATE", "OUTPUT_RATE", "WS_PATH", "AudioChunk", "Event", "FunctionCall",
    "FunctionResponse", "GenerationComplete", "GoAway", "InputTranscription", "Interrupted",
    "OutputTranscription", "ProtocolError", "SessionResumptionUpdate", "SetupComplete",
    "TextPart", "ToolCall", "ToolCallCancellation", "TurnComplete", "Unknown", "UsageMetadata",
    "activity_end", "activity_start", "audio", "audio_stream_end", "b64decode",
    "choose_api_version", "client_content", "initial_context", "lookup", "model_name",
    "parse_duration", "parse_server_frame", "rate_from_mime", "setup", "text", "tool_response",
    "ws_path",
]

WS_PATH = "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
AUDIO_MIME = f"audio/pcm;rate={INPUT_RATE}"


# ---------------------------------------------------------------- builders (client -> server)

def choose_api_version(cfg: LiveConfig) -> tuple[str, str]:
    """The API version for the URL, and why it was chosen (for the log)."""
    rules = rules_for(cfg.model)
    needs = [name for name, on in (
        ("affective_dialog", cfg.affective_dialog and rules.affective_dialog),
        ("proactive_audio", cfg.proactive_audio and rules.proactive_audio == "optional")) if on]
    what = " and ".join(needs) + (" needs" if len(needs) == 1 else " need")
    if cfg.api_version != "auto":
        if needs and cfg.api_version != "v1alpha":
            return cfg.api_version, (f"api_version = {cfg.api_version} as configured, although "
                                     f"{what} v1alpha")
        return cfg.api_version, f"api_version = {cfg.api_version} as configured"
    if needs:
        return "v1alpha", f"v1alpha because {what} it"
    return "v1beta", "v1beta (the default)"


def ws_path(version: str) -> str:
    return WS_PATH.format(version=version)


def model_name(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else "models/" + model


def setup(cfg: LiveConfig, handle: str | None = None,
          tools: Sequence[Mapping[str, Any]] = ()) -> bytes:
    """The first message of a session; `handle` resumes an earlier session; `tools` are the
    function declarations offered to the model.

    Only what cfg.model takes goes in (models.py): options it rejects were refused by
    `models.validate` at start-up, and proactive audio is never sent where it is always on.
    """
    rules = rules_for(cfg.model)
    gen: dict[str, Any] = {"responseModalities": [cfg.response_modality]}
    if cfg.response_modality == "AUDIO":
        speech: dict[str, Any] = {
            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": cfg.voice}}}
        if cfg.language_code:
            speech["languageCode"] = cfg.language_code
        gen["speechConfig"] = speech
    if cfg.temperature >= 0:
        gen["temperature"] = cfg.temperature
    thinking: dict[str, Any] = {}
    if cfg.thinking_level and cfg.thinking_level in rules.thinking_levels:
        thinking["thinkingLevel"] = cfg.thinking_level.upper()
    if cfg.thinking_budget >= 0 and rules.thinking_budget:
        thinking["thinkingBudget"] = cfg.thinking_budget
    if thinking:
        gen["thinkingConfig"] = thinking
    if cfg.affective_dialog and rules.affective_dialog:
        gen["enableAffectiveDialog"] = True
    body: dict[str, Any] = {"model": model_name(cfg.model), "generationConfig": gen}
    if cfg.system_instruction:
        body["systemInstruction"] = {"role": "user", "parts": [{"text": cfg.system_instruction}]}
    if tools or cfg.google_search:
        body["tools"] = ([{"functionDeclarations": list(tools)}] if tools else []) + (
            [{"googleSearch": {}}] if cfg.google_search else [])
    body["realtimeInputConfig"] = {
        "automaticActivityDetection": {"disabled": cfg.turn_detection == "button"},
        "activityHandling": ("START_OF_ACTIVITY_INTERRUPTS" if cfg.activity_handling == "interrupt"
                             else "NO_INTERRUPTION"),
    }
    if cfg.input_transcription:
        body["inputAudioTranscription"] = _transcription(cfg, rules)
    if cfg.output_transcription and cfg.response_modality == "AUDIO":
        body["outputAudioTranscription"] = {}
    body["sessionResumption"] = {"handle": handle} if handle else {}
    if cfg.context_compression:
        compression: dict[str, Any] = {"slidingWindow": {}}
        if cfg.compression_trigger_tokens:
            compression["triggerTokens"] = cfg.compression_trigger_tokens
        body["contextWindowCompression"] = compression
    if cfg.proactive_audio and rules.proactive_audio == "optional":
        body["proactivity"] = {"proactiveAudio": True}
    return _json({"setup": body})


def _transcription(cfg: LiveConfig, rules: ModelRules) -> dict[str, Any]:
    """inputAudioTranscription: the language hints and vocabulary, where the model takes them."""
    out: dict[str, Any] = {}
    if cfg.transcription_languages and rules.transcription_languages:
        out["languageCodes"] = list(cfg.transcription_languages)
    if cfg.custom_vocabulary and rules.custom_vocabulary:
        out["customVocabulary"] = list(cfg.custom_vocabulary)
    return out


def _json(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def client_content(turns: Iterable[tuple[str, str]], *, turn_complete: bool) -> bytes:
    """Conversation turns as (role, text); turn_complete=False adds context without a reply."""
    body = {"turns": [{"role": role, "parts": [{"text": text}]} for role, text in turns],
            "turnComplete": turn_complete}
    return _json({"clientContent": body})


def initial_context(cfg: LiveConfig) -> bytes | None:
    """The configured [[live.context]] turns, sent once after a fresh setup; None if empty."""
    if not cfg.context:
        return None
    return client_content(((t.role, t.text) for t in cfg.context), turn_complete=False)


_AUDIO_HEAD = b'{"realtimeInput":{"audio":{"mimeType":"' + AUDIO_MIME.encode() + b'","data":"'
_AUDIO_TAIL = b'"}}}'


def audio(pcm: bytes | bytearray | memoryview) -> bytes:
    """16 kHz PCM16LE mic audio. Hot path: base64 straight into bytes, then one join."""
    return b"".join((_AUDIO_HEAD, binascii.b2a_base64(pcm, newline=False), _AUDIO_TAIL))


_ACTIVITY_START = b'{"realtimeInput":{"activityStart":{}}}'
_ACTIVITY_END = b'{"realtimeInput":{"activityEnd":{}}}'
_AUDIO_STREAM_END = b'{"realtimeInput":{"audioStreamEnd":true}}'


def activity_start() -> bytes:
    return _ACTIVITY_START


def activity_end() -> bytes:
    return _ACTIVITY_END


def audio_stream_end() -> bytes:
    return _AUDIO_STREAM_END


def text(s: str) -> bytes:
    """Typed text as realtime input (the model answers it as a turn)."""
    return _json({"realtimeInput": {"text": s}})


@dataclass(frozen=True, slots=True)
class FunctionResponse:
    """The answer to one FunctionCall, sent back in a toolResponse."""

    id: str
    name: str
    response: Mapping[str, Any]
    scheduling: str | None = None  # SILENT | WHEN_IDLE | INTERRUPT, for NON_BLOCKING functions


def tool_response(responses: Iterable[FunctionResponse]) -> bytes:
    body = [{"id": r.id, "name": r.name, "response": dict(r.response)}
            | ({"scheduling": r.scheduling} if r.scheduling else {}) for r in responses]
    return _json({"toolResponse": {"functionResponses": body}})
