"""The Gemini Live API wire protocol, sans I/O: client messages out, typed server events in.

Nothing here touches a socket, asyncio or websockets, so every rule is a plain unit test; the
client (client.py) only moves the strings this module builds and the frames it parses. Builders
return str because the service expects client messages as TEXT frames; the parser accepts text or
binary frames, camelCase or snake_case keys and either base64 alphabet, as proto3 JSON allows.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from config import LiveConfig
from config.rates import INPUT_RATE, OUTPUT_RATE

WS_PATH = "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
AUDIO_MIME = f"audio/pcm;rate={INPUT_RATE}"


class ProtocolError(Exception):
    """A server frame that cannot be understood; the message is a short reason."""


# ---------------------------------------------------------------- events (server -> client)

@dataclass(frozen=True, slots=True)
class SetupComplete:
    """setupComplete: the session is live; `session_id` when the server names it."""

    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Reply audio: PCM16LE mono at `rate` (24 kHz from the real service)."""

    data: bytes
    rate: int


@dataclass(frozen=True, slots=True)
class TextPart:
    """A text part of the model's turn; `thought` marks thinking, not the answer."""

    text: str
    thought: bool = False


@dataclass(frozen=True, slots=True)
class InputTranscription:
    """What the server heard the user say."""

    text: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class OutputTranscription:
    """What the model's spoken reply says."""

    text: str
    finished: bool = False


@dataclass(frozen=True, slots=True)
class GenerationComplete:
    """The model has generated all of its reply (it may still be arriving)."""


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """The model's turn is over; `reason` is the server's turnCompleteReason."""

    reason: str | None = None
    waiting_for_input: bool = False


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The server stopped the reply early; what was already sent is stale."""


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One call the model asks the client to make."""

    id: str
    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """toolCall: the model waits for a toolResponse to these calls."""

    calls: tuple[FunctionCall, ...]


@dataclass(frozen=True, slots=True)
class ToolCallCancellation:
    """toolCallCancellation: calls the model no longer wants answered."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GoAway:
    """The server will close soon; `time_left_s` is None when it did not say how soon."""

    time_left_s: float | None


@dataclass(frozen=True, slots=True)
class SessionResumptionUpdate:
    """A handle to resume this session on a new connection, when resumable."""

    handle: str | None
    resumable: bool
    last_consumed_index: int | None = None


@dataclass(frozen=True, slots=True)
class UsageMetadata:
    """Token counts so far, as the server reports them."""

    prompt_tokens: int = 0
    response_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Unknown:
    """Top-level (or serverContent) keys this parser does not know; logged, never fatal."""

    keys: tuple[str, ...]


Event = (SetupComplete | AudioChunk | TextPart | InputTranscription | OutputTranscription
         | GenerationComplete | TurnComplete | Interrupted | ToolCall | ToolCallCancellation
         | GoAway | SessionResumptionUpdate | UsageMetadata | Unknown)

_GENERATION_COMPLETE = GenerationComplete()
_INTERRUPTED = Interrupted()


# ---------------------------------------------------------------- parsing helpers

@cache
def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def lookup(obj: Mapping[str, Any], camel: str) -> Any:
    """obj[camel], or obj[snake_case] as the Python SDK sends it."""
    value = obj.get(camel)
    if value is None:
        value = obj.get(_snake(camel))
    return value


def _has(obj: Mapping[str, Any], camel: str) -> bool:
    return camel in obj or _snake(camel) in obj


@cache
def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _obj(value: Any, what: str) -> dict[str, Any]:
    """A JSON object with its keys in camelCase, so each field is then one dict.get."""
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is not an object")
    for key in value:
        if "_" in key:
            return {_camel(k): v for k, v in value.items()}
    return value


def _str(value: Any, what: str, default: str | None = None) -> str | None:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ProtocolError(f"{what} is not a string")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(f"{what} is not a list")
    return value


def _bool(value: Any, what: str) -> bool:
    """proto3 JSON booleans; the service has been seen sending "true" as a string."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ProtocolError(f"{what} is not a boolean")


def _int(value: Any, what: str) -> int | None:
    """proto3 JSON integers; int64 values arrive as decimal strings."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and value.isascii():
        return int(value)
    raise ProtocolError(f"{what} is not an integer")


_URLSAFE = bytes.maketrans(b"-_", b"+/")


def b64decode(data: Any, what: str = "data") -> bytes:
    """Standard or URL-safe base64 (padding optional); anything else is a ProtocolError."""
    if not isinstance(data, str):
        raise ProtocolError(f"{what} is not a base64 string")
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except ValueError:
        pass
    try:
        raw = data.encode("ascii").translate(_URLSAFE)
        return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4), strict_mode=True)
    except ValueError:
        raise ProtocolError(f"{what} is not valid base64") from None


_DURATION = re.compile(r"(-?\d+(?:\.\d+)?)s")


def parse_duration(value: Any) -> float:
    """A proto Duration in JSON form, e.g. "57s" or "1.5s", in seconds."""
    if isinstance(value, str):
        m = _DURATION.fullmatch(value.strip())
        if m:
            return float(m.group(1))
    raise ProtocolError(f"goAway.timeLeft {str(value)[:20]!r} is not a duration")


@lru_cache(maxsize=16)
def rate_from_mime(mime: str) -> int | None:
    """The sample rate in "audio/pcm;rate=24000"; None if the type is not raw PCM audio.
    Cached: every audio part of a session carries the same string."""
    kind, _, params = mime.partition(";")
    if kind.strip().lower() not in ("audio/pcm", "audio/l16"):
        return None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "rate":
            value = value.strip()
            if not (value.isdigit() and value.isascii() and 0 < int(value) <= 384000):
                raise ProtocolError(f"audio mimeType {mime[:40]!r} has a bad rate")
            return int(value)
    return OUTPUT_RATE


# ---------------------------------------------------------------- the parser

_TOP_KEYS = frozenset(("setupComplete", "serverContent", "toolCall", "toolCallCancellation",
                      "goAway", "sessionResumptionUpdate", "usageMetadata"))
_CONTENT_KEYS = frozenset(("modelTurn", "turnComplete", "interrupted", "generationComplete",
                           "inputTranscription", "outputTranscription", "turnCompleteReason",
                           "waitingForInput", "groundingMetadata", "urlContextMetadata",
                           "interimInputTranscription", "interactionStatus"))


def parse_server_frame(data: bytes | bytearray | memoryview | str) -> list[Event]:
    """All events in one server frame, in the order a client should act on them."""
    if isinstance(data, memoryview):
        data = data.tobytes()
    try:
        msg = json.loads(data)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"frame is not JSON ({type(exc).__name__})") from None
    except RecursionError:
        raise ProtocolError("frame is nested too deeply") from None
    msg = _obj(msg, "frame")
    events: list[Event] = []
    unknown = tuple(k for k in msg if k not in _TOP_KEYS)

    value = msg.get("setupComplete")
    if value is not None:
        setup = _obj(value, "setupComplete")
        events.append(SetupComplete(_str(setup.get("sessionId"), "setupComplete.sessionId")))
    turn_complete: TurnComplete | None = None
    value = msg.get("serverContent")
    if value is not None:
        turn_complete = _server_content(_obj(value, "serverContent"), events)
    value = msg.get("usageMetadata")
    if value is not None:
        events.append(_usage(_obj(value, "usageMetadata")))
    if turn_complete is not None:
        events.append(turn_complete)
    value = msg.get("toolCall")
    if value is not None:
        events.append(_tool_call(_obj(value, "toolCall")))
    value = msg.get("toolCallCancellation")
    if value is not None:
        ids = _list(_obj(value, "toolCallCancellation").get("ids"), "ids")
        if not all(isinstance(i, str) for i in ids):
            raise ProtocolError("toolCallCancellation.ids is not a list of strings")
        events.append(ToolCallCancellation(tuple(ids)))
    value = msg.get("sessionResumptionUpdate")
    if value is not None:
        upd = _obj(value, "sessionResumptionUpdate")
        events.append(SessionResumptionUpdate(
            _str(upd.get("newHandle"), "newHandle") or None,
            _bool(upd.get("resumable"), "resumable"),
            _int(upd.get("lastConsumedClientMessageIndex"), "lastConsumedClientMessageIndex")))
    value = msg.get("goAway")
    if value is not None:
        left = _obj(value, "goAway").get("timeLeft")
        events.append(GoAway(None if left is None else parse_duration(left)))
    if unknown:
        events.append(Unknown(unknown))
    return events


def _server_content(content: dict[str, Any], events: list[Event]) -> TurnComplete | None:
    turn = content.get("modelTurn")
    if turn is not None:
        for part in _list(_obj(turn, "modelTurn").get("parts"), "modelTurn.parts"):
            _part(_obj(part, "modelTurn part"), events)
    for key, cls in (("inputTranscription", InputTranscription),
                     ("outputTranscription", OutputTranscription)):
        value = content.get(key)
        if value is not None:
            tr = _obj(value, key)
            events.append(cls(_str(tr.get("text"), f"{key}.text", "") or "",
                              _bool(tr.get("finished"), f"{key}.finished")))
    if _bool(content.get("interrupted"), "interrupted"):
        events.append(_INTERRUPTED)
    if _bool(content.get("generationComplete"), "generationComplete"):
        events.append(_GENERATION_COMPLETE)
    unknown = tuple(k for k in content if k not in _CONTENT_KEYS)
    if unknown:
        events.append(Unknown(tuple("serverContent." + k for k in unknown)))
    waiting = _bool(content.get("waitingForInput"), "waitingForInput")
    reason = _str(content.get("turnCompleteReason"), "turnCompleteReason")
    if _bool(content.get("turnComplete"), "turnComplete"):
        return TurnComplete(reason, waiting)
    return None


def _part(part: dict[str, Any], events: list[Event]) -> None:
    inline = part.get("inlineData")
    if inline is not None:
        inline = _obj(inline, "inlineData")
        mime = _str(inline.get("mimeType"), "inlineData.mimeType", "") or ""
        rate = rate_from_mime(mime)
        if rate is None:
            events.append(Unknown((f"inlineData:{mime[:40]}",)))
            return
        data = inline.get("data")
        events.append(AudioChunk(b64decode("" if data is None else data, "inlineData.data"), rate))
        return
    text = part.get("text")
    if text is not None:
        events.append(TextPart(_str(text, "part.text") or "", _bool(part.get("thought"),
                                                                     "part.thought")))
        return
    if part:
        events.append(Unknown(tuple("part." + k for k in part)))


def _usage(usage: dict[str, Any]) -> UsageMetadata:
    return UsageMetadata(_int(usage.get("promptTokenCount"), "promptTokenCount") or 0,
                         _int(usage.get("responseTokenCount"), "responseTokenCount") or 0,
                         _int(usage.get("totalTokenCount"), "totalTokenCount") or 0)


def _args(args: Any) -> dict[str, Any]:
    """Function arguments are the model's own map: their keys are kept as they are."""
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise ProtocolError("functionCall.args is not an object")
    return args


def _tool_call(call: dict[str, Any]) -> ToolCall:
    out = []
    for fc in _list(call.get("functionCalls"), "toolCall.functionCalls"):
        fc = _obj(fc, "functionCall")
        args = fc.get("args")
        out.append(FunctionCall(_str(fc.get("id"), "functionCall.id", "") or "",
                                _str(fc.get("name"), "functionCall.name", "") or "",
                                _args(args)))
    return ToolCall(tuple(out))


# ---------------------------------------------------------------- builders (client -> server)

def choose_api_version(cfg: LiveConfig) -> tuple[str, str]:
    """The API version for the URL, and why it was chosen (for the log)."""
    needs = [name for name, on in (("affective_dialog", cfg.affective_dialog),
                                   ("proactive_audio", cfg.proactive_audio)) if on]
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


def setup(cfg: LiveConfig, handle: str | None = None) -> str:
    """The first message of a session; `handle` resumes an earlier session."""
    gen: dict[str, Any] = {"responseModalities": [cfg.response_modality]}
    if cfg.response_modality == "AUDIO":
        speech: dict[str, Any] = {
            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": cfg.voice}}}
        if cfg.language_code:
            speech["languageCode"] = cfg.language_code
        gen["speechConfig"] = speech
    if cfg.temperature >= 0:
        gen["temperature"] = cfg.temperature
    if cfg.thinking_budget >= 0:
        gen["thinkingConfig"] = {"thinkingBudget": cfg.thinking_budget}
    if cfg.affective_dialog:
        gen["enableAffectiveDialog"] = True
    body: dict[str, Any] = {"model": model_name(cfg.model), "generationConfig": gen}
    if cfg.system_instruction:
        body["systemInstruction"] = {"role": "user", "parts": [{"text": cfg.system_instruction}]}
    body["realtimeInputConfig"] = {
        "automaticActivityDetection": {"disabled": cfg.turn_detection == "button"},
        "activityHandling": ("START_OF_ACTIVITY_INTERRUPTS" if cfg.activity_handling == "interrupt"
                             else "NO_INTERRUPTION"),
    }
    if cfg.input_transcription:
        body["inputAudioTranscription"] = {}
    if cfg.output_transcription and cfg.response_modality == "AUDIO":
        body["outputAudioTranscription"] = {}
    body["sessionResumption"] = {"handle": handle} if handle else {}
    if cfg.context_compression:
        body["contextWindowCompression"] = {"slidingWindow": {}}
    if cfg.proactive_audio:
        body["proactivity"] = {"proactiveAudio": True}
    return json.dumps({"setup": body}, ensure_ascii=False, separators=(",", ":"))


def client_content(turns: Iterable[tuple[str, str]], *, turn_complete: bool) -> str:
    """Conversation turns as (role, text); turn_complete=False adds context without a reply."""
    body = {"turns": [{"role": role, "parts": [{"text": text}]} for role, text in turns],
            "turnComplete": turn_complete}
    return json.dumps({"clientContent": body}, ensure_ascii=False, separators=(",", ":"))


def initial_context(cfg: LiveConfig) -> str | None:
    """The configured [[live.context]] turns, sent once after a fresh setup; None if empty."""
    if not cfg.context:
        return None
    return client_content(((t.role, t.text) for t in cfg.context), turn_complete=False)


_AUDIO_HEAD = '{"realtimeInput":{"audio":{"mimeType":"' + AUDIO_MIME + '","data":"'
_AUDIO_TAIL = '"}}}'


def audio(pcm: bytes | bytearray | memoryview) -> str:
    """16 kHz PCM16LE mic audio. Hot path: one base64 pass and one concatenation, no dict."""
    return _AUDIO_HEAD + base64.b64encode(pcm).decode("ascii") + _AUDIO_TAIL


_ACTIVITY_START = '{"realtimeInput":{"activityStart":{}}}'
_ACTIVITY_END = '{"realtimeInput":{"activityEnd":{}}}'
_AUDIO_STREAM_END = '{"realtimeInput":{"audioStreamEnd":true}}'


def activity_start() -> str:
    return _ACTIVITY_START


def activity_end() -> str:
    return _ACTIVITY_END


def audio_stream_end() -> str:
    return _AUDIO_STREAM_END


def text(s: str) -> str:
    """Typed text as realtime input (the model answers it as a turn)."""
    return json.dumps({"realtimeInput": {"text": s}}, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class FunctionResponse:
    """The answer to one FunctionCall, sent back in a toolResponse."""

    id: str
    name: str
    response: Mapping[str, Any]


def tool_response(responses: Iterable[FunctionResponse]) -> str:
    body = [{"id": r.id, "name": r.name, "response": dict(r.response)} for r in responses]
    return json.dumps({"toolResponse": {"functionResponses": body}}, ensure_ascii=False,
                      separators=(",", ":"))
