"""structlog set-up for the whole process, and the processor that keeps secrets out of logs.

``configure_logging`` renders structlog events and the stdlib ``logging`` records (aiohttp's,
aiogram's, redis') through one chain, so both are redacted and land on the same stream. The
redactor masks values under secret-sounding keys, ``signature=...`` and Telegram bot tokens
inside text, and any literal registered with ``register_secret``; ``redact_text`` applies it
to any other text a process prints, and ``redact_stderr`` to the tracebacks of exceptions
nothing caught and to warnings. The registry is this module's only state: a secret is known
once, wherever the logger is.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any, Final, TextIO

import orjson
import structlog

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from structlog.typing import EventDict, Processor

    from utils.config import LoggingConfig

__all__ = (
    "configure_logging",
    "get_logger",
    "redact",
    "redact_stderr",
    "redact_text",
    "register_secret",
    "registered_secrets",
)

MASK: Final = "***"
MIN_SECRET_LENGTH: Final = 8
_SECRET_KEYS: Final = frozenset(
    {
        "api_key",
        "secret_key",
        "api_secret",
        "signature",
        "token",
        "bot_token",
        "password",
        "x-mbx-apikey",
    }
)
# A signed query string's signature, and a bot token in a Bot API URL (bot<id>:<secret>, the
# colon perhaps percent-encoded).
_SECRET_TEXT: Final = re.compile(r"(?<=signature=)[^&\s]+|(?<=bot)\d+(?::|%3[Aa])[\w-]+")


class _SecretRegistry:
    """Literal secrets to mask, as one compiled alternation rebuilt on each new secret."""

    def __init__(self) -> None:
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        with self._lock:
            if value in self._values:
                return
            self._values |= {value}
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    @property
    def values(self) -> frozenset[str]:
        return self._values

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self._pattern


_registry: Final = _SecretRegistry()


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it appears in a logged string from now on.

    Values shorter than 8 characters are ignored: masking them would garble ordinary text,
    and real keys and tokens are far longer. Registering twice is harmless.
    """
    if len(value) >= MIN_SECRET_LENGTH:
        _registry.add(value)


def registered_secrets() -> frozenset[str]:
    """The literals ``register_secret`` has accepted so far."""
    return _registry.values


def redact(_logger: object, _method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets in keys, text and registered literals, recursively."""
    literals = _registry.pattern
    for key, value in event_dict.items():
        event_dict[key] = _redact_value(key, value, literals)
    return event_dict


def redact_text(text: str) -> str:
    """``text`` with bot tokens, signatures and every registered secret masked."""
    return _redact_text(text, _registry.pattern)


def redact_stderr() -> None:
    """For a process's entry point: what Python itself writes to stderr passes the redactor
    too. An exception nothing caught (in any thread) prints its traceback redacted, and
    warnings become ``py.warnings`` log records (redacted once ``configure_logging`` ran)."""
    sys.excepthook = _redacted_excepthook
    threading.excepthook = _redacted_thread_excepthook
    logging.captureWarnings(True)


def configure_logging(config: LoggingConfig, *, stream: TextIO | None = None) -> None:
    """Send structlog and stdlib logging, redacted, to ``stream`` (stderr by default).

    Safe to call again (tests do): the previous set-up is replaced, not stacked.
    """
    out = stream if stream is not None else sys.stderr
    level = logging.getLevelNamesMapping()[config.level]
    renderer: Processor
    if config.format == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_is_tty(out))
    # Exceptions become text before redact runs, so a URL inside one is masked too.
    tail: list[Processor] = [structlog.processors.format_exc_info, redact, renderer]

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )

    handler = _StructlogHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.stdlib.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StructlogHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class _StructlogHandler(logging.StreamHandler[TextIO]):
    """Marks the root handler this module installed, so a new set-up replaces it."""


def _redact_value(key: object, value: Any, literals: re.Pattern[str] | None) -> Any:
    if isinstance(key, str) and key.lower() in _SECRET_KEYS and value is not None:
        return MASK
    if isinstance(value, str):
        return _redact_text(value, literals)
    if isinstance(value, dict):
        return {k: _redact_value(k, v, literals) for k, v in value.items()}
    if type(value) is list:
        return [_redact_value(None, item, literals) for item in value]
    if type(value) is tuple:
        return tuple(_redact_value(None, item, literals) for item in value)
    return value


def _redacted_excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(redact_text(text))


def _redacted_thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(redact_text(f"Exception in thread {name}:\n{text}"))


def _redact_text(text: str, literals: re.Pattern[str] | None) -> str:
    # Substring tests are several times cheaper than a regex scan that finds nothing.
    if "signature=" in text or "bot" in text:
        text = _SECRET_TEXT.sub(MASK, text)
    return literals.sub(MASK, text) if literals is not None else text


def _json_dumps(obj: Any, default: Callable[[Any], Any] | None = None, **_: Any) -> str:
    return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS).decode()


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def get_logger(name: str) -> Any:
    """A library module's logger: structlog's key-value API over a stdlib logger.

    Silent unless the application configures logging (``configure_logging`` renders these
    records redacted, like everything else); a disabled level costs one ``isEnabledFor``.
    """
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
