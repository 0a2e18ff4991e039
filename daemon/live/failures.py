"""Why a Live connection failed, as a class a retry policy can act on; sans I/O.

The WebSocket shell raises these exception types (never websockets' own), so classifying a
failure needs no socket, no websockets and no asyncio, and never formats request headers:

    >>> classify_close(1008, "models/x is not found for API version v1beta").kind
    'config'
    >>> classify_error(UpgradeRefused(403))
    Failure(kind='auth', detail='HTTP 403 at the WebSocket upgrade')
"""

from __future__ import annotations

from dataclasses import dataclass

# (floor, ceiling) in seconds of the retry delay after each kind of failure; "transient" and
# "rejected" use [live] reconnect_min_s/reconnect_max_s. A bad key or setup will not fix itself.
RETRY_S = {"quota": (10.0, 300.0), "config": (60.0, 900.0), "auth": (120.0, 1800.0)}


class UpgradeRefused(Exception):
    """The server answered the WebSocket upgrade with HTTP `status`."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status} at the WebSocket upgrade")
        self.status = status


class HandshakeFailed(Exception):
    """The WebSocket opening handshake failed for another reason than an HTTP status."""


class SetupTimeout(Exception):
    """The server did not answer the setup message in time."""


class ClosedEarly(Exception):
    """The connection closed before setupComplete, with a WebSocket close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"close {code}")
        self.code, self.reason = code, reason


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a session was lost or could not be opened, as one log-ready phrase."""

    kind: str      # "transient" | "quota" | "config" | "auth" | "rejected" (mid-session 1007/1008)
    detail: str

    @property
    def model_missing(self) -> bool:
        """The service does not know the configured model (close 1008 "... is not found ...")."""
        return self.kind == "config" and "not found" in self.detail.lower()


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again in `delay` seconds (0: at once); `line` is logged at `level`."""

    delay: float
    failure: Failure
    line: str
    level: int


def classify_close(code: int | None, reason: str) -> Failure:
    detail = f"close {code}" + (f": {reason}" if reason else "")
    low = reason.lower()
    if "api key" in low or "unregistered callers" in low or "permission" in low:
        return Failure("auth", detail)
    if code in (1007, 1008):
        return Failure("config", detail)
    if code == 1011 and "resource_exhausted" in low:
        return Failure("quota", detail)
    return Failure("transient", detail)


def classify_error(exc: BaseException) -> Failure:
    """A failure to connect or set up, classified without ever formatting request headers."""
    if isinstance(exc, UpgradeRefused):
        if exc.status in (401, 403):
            return Failure("auth", str(exc))
        if exc.status in (400, 404):
            return Failure("config", str(exc))
        return Failure("quota" if exc.status == 429 else "transient", str(exc))
    if isinstance(exc, ClosedEarly):
        return classify_close(exc.code, exc.reason)
    if isinstance(exc, SetupTimeout):
        return Failure("transient", "no setupComplete in time")
    if isinstance(exc, TimeoutError):
        return Failure("transient", "connect timed out")
    if isinstance(exc, OSError):
        return Failure("transient", f"network: {exc.strerror or type(exc).__name__}")
    if isinstance(exc, HandshakeFailed):
        return Failure("transient", f"handshake failed ({exc})")
    return Failure("transient", type(exc).__name__)


def human(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"
