"""Server frames of the Gemini Live API parsed into typed events, sans I/O.

The parser accepts text or binary frames, camelCase or snake_case keys and either base64
alphabet, as proto3 JSON allows; anything it cannot understand is a ProtocolError with a short
reason, which the client logs before it goes on.

    >>> parse_server_frame(b'{"serverContent": {"turnComplete": true}}')
    [TurnComplete(reason=None, waiting_for_input=False, interaction_status=None)]
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

from config.rates import OUTPUT_RATE
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


class ProtocolError(Exception):
    """A server frame that cannot be understood; the message is a short reason."""


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
    chunk = _audio_only(msg)
    return [chunk] if chunk is not None else parse_message(msg)


def _audio_only(msg: Any) -> AudioChunk | None:
    """The frame most of a reply comes in, one audio part and nothing else, taken without the
    general walk of `parse_message` (which gives the same event); None for any other frame."""
    try:
        (key, content), = msg.items()
        (turn_key, turn), = content.items()
        (parts_key, parts), = turn.items()
        (part_key, inline), = parts[0].items()
        data = inline["data"]
        rate = rate_from_mime(inline["mimeType"])
    except (AttributeError, TypeError, ValueError, KeyError, IndexError):
        return None
    if (key, turn_key, parts_key, part_key) != ("serverContent", "modelTurn", "parts",
                                                "inlineData") or len(parts) != 1 \
            or len(inline) != 2 or rate is None or not isinstance(data, str):
        return None
    return AudioChunk(b64decode(data, "inlineData.data"), rate)


def parse_message(msg: Any) -> list[Event]:
    """All events in one server message, as parsed from its JSON."""
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
    status = _str(content.get("interactionStatus"), "interactionStatus")
    # As the SDK's receive(): an IDLE status ends the interaction even without turnComplete.
    if _bool(content.get("turnComplete"), "turnComplete") or status == "IDLE":
        return TurnComplete(reason, waiting, status)
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
                         _int(usage.get("totalTokenCount"), "totalTokenCount") or 0,
                         _int(usage.get("thoughtsTokenCount"), "thoughtsTokenCount") or 0)


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
