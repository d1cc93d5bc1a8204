"""Logs are one event per line, filtered by level, and never carry a secret."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import structlog

from utils.logging_setup import redact, redact_text, register_secret, registered_secrets

if TYPE_CHECKING:
    import io
    from collections.abc import Callable


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def _unique_secret() -> str:
    return f"secret-{uuid.uuid4().hex}"


def test_json_format_writes_one_object_per_line(log_to: Callable[..., io.StringIO]) -> None:
    stream = log_to(log_format="json")
    log = structlog.get_logger("test")

    log.info("price_fetched", symbol="BTCUSDT", price="65000.10")
    log.warning("slow_response", elapsed_ms=1500)

    first, second = _lines(stream)
    assert first["event"] == "price_fetched"
    assert first["symbol"] == "BTCUSDT"
    assert first["level"] == "info"
    assert str(first["timestamp"]).endswith("Z")
    assert second == second | {"event": "slow_response", "level": "warning", "elapsed_ms": 1500}


def test_console_format_is_readable(log_to: Callable[..., io.StringIO]) -> None:
    stream = log_to(log_format="console")

    structlog.get_logger("test").info("price_fetched", symbol="BTCUSDT")

    line = stream.getvalue()
    assert "price_fetched" in line
    assert "symbol=BTCUSDT" in line
    assert "info" in line
    assert "\x1b[" not in line, "no colour codes when the stream is not a terminal"


def test_debug_lines_are_dropped_at_info(log_to: Callable[..., io.StringIO]) -> None:
    stream = log_to(level="INFO")
    log = structlog.get_logger("test")

    log.debug("request_sent", path="/api/v3/time")
    log.info("started")

    assert [line["event"] for line in _lines(stream)] == ["started"]


def test_secret_keys_are_masked_whatever_their_case(log_to: Callable[..., io.StringIO]) -> None:
    stream = log_to()

    structlog.get_logger("test").info(
        "signed_request", api_key="k-123", X_MBX_APIKEY="unchanged", **{"X-MBX-APIKEY": "k-456"}
    )

    (line,) = _lines(stream)
    assert line["api_key"] == "***"
    assert line["X-MBX-APIKEY"] == "***"
    assert "k-123" not in stream.getvalue()
    assert "k-456" not in stream.getvalue()


def test_signature_and_bot_tokens_are_masked_inside_text(
    log_to: Callable[..., io.StringIO],
) -> None:
    stream = log_to()

    structlog.get_logger("test").info(
        "request_failed",
        url="https://api.binance.com/api/v3/order?symbol=BTCUSDT&signature=abc123def&x=1",
        telegram="POST https://api.telegram.org/bot123456:AAH-secret_part/sendMessage",
    )

    (line,) = _lines(stream)
    assert line["url"] == "https://api.binance.com/api/v3/order?symbol=BTCUSDT&signature=***&x=1"
    assert line["telegram"] == "POST https://api.telegram.org/bot***/sendMessage"


def test_registered_secrets_are_masked_anywhere(log_to: Callable[..., io.StringIO]) -> None:
    secret = _unique_secret()
    register_secret(secret)
    register_secret(secret)
    stream = log_to()
    event = f"connected with {secret}"  # the event text itself must be masked too

    structlog.get_logger("test").info(event, detail=[f"key={secret}"])

    assert secret in registered_secrets()
    assert secret not in stream.getvalue()
    (line,) = _lines(stream)
    assert line["event"] == "connected with ***"
    assert line["detail"] == ["key=***"]


def test_short_values_are_not_registered() -> None:
    register_secret("short")

    assert "short" not in registered_secrets()


def test_nested_structures_are_redacted() -> None:
    event = {
        "event": "order",
        "params": {"symbol": "BTCUSDT", "signature": "abc", "inner": {"token": "t"}},
        "history": ({"password": "p"}, "signature=zzz&a=1"),
        "count": 3,
    }

    result = redact(None, "info", event)

    assert result == {
        "event": "order",
        "params": {"symbol": "BTCUSDT", "signature": "***", "inner": {"token": "***"}},
        "history": ({"password": "***"}, "signature=***&a=1"),
        "count": 3,
    }


def test_stdlib_logging_is_routed_and_redacted(log_to: Callable[..., io.StringIO]) -> None:
    secret = _unique_secret()
    register_secret(secret)
    stream = log_to()

    logging.getLogger("aiohttp.client").warning("GET %s?signature=abc failed %s", "/x", secret)
    logging.getLogger("aiohttp.client").debug("not shown at INFO")

    (line,) = _lines(stream)
    assert line["event"] == "GET /x?signature=*** failed ***"
    assert line["logger"] == "aiohttp.client"
    assert line["level"] == "warning"


def test_exceptions_are_rendered_and_redacted(log_to: Callable[..., io.StringIO]) -> None:
    stream = log_to()
    url = "https://api.binance.com/api/v3/order?signature=abc123"

    try:
        raise ConnectionError(url)
    except ConnectionError:
        structlog.get_logger("test").exception("request_failed")

    (line,) = _lines(stream)
    assert "ConnectionError" in str(line["exception"])
    assert "abc123" not in stream.getvalue()


def test_configuring_again_replaces_the_previous_setup(
    log_to: Callable[..., io.StringIO],
) -> None:
    first = log_to()
    second = log_to()

    logging.getLogger("aiohttp.client").warning("once")

    assert first.getvalue() == ""
    assert len(_lines(second)) == 1


def test_redact_text_masks_tokens_signatures_and_registered_secrets() -> None:
    secret = _unique_secret()
    register_secret(secret)
    text = (
        "Unauthorized: /bot123456:AAH-secret_part/getMe; "
        "GET https://x/bot123456%3AAAH-secret_part/getMe; "
        f"order?symbol=BTCUSDT&signature=abc123&x=1 with {secret}"
    )

    assert redact_text(text) == (
        "Unauthorized: /bot***/getMe; GET https://x/bot***/getMe; "
        "order?symbol=BTCUSDT&signature=***&x=1 with ***"
    )


def _run_python(script: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(  # noqa: S603 - our own interpreter running a fixed script
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_uncaught_exception_prints_its_traceback_redacted() -> None:
    secret = _unique_secret()
    done = _run_python(
        f"""
        import threading
        from utils.logging_setup import redact_stderr, register_secret
        register_secret({secret!r})
        redact_stderr()
        def fail() -> None:
            raise RuntimeError("in a thread: {secret}")
        thread = threading.Thread(target=fail, name="worker")
        thread.start()
        thread.join()
        raise ConnectionError("https://api.telegram.org/bot42:AAH-part/getMe {secret}")
        """
    )

    assert done.returncode == 1
    assert secret not in done.stderr
    assert "AAH-part" not in done.stderr
    assert "RuntimeError: in a thread: ***" in done.stderr
    assert "ConnectionError: https://api.telegram.org/bot***/getMe ***" in done.stderr


def test_warnings_pass_the_redactor_once_stderr_is_redacted() -> None:
    secret = _unique_secret()
    done = _run_python(
        f"""
        import warnings
        from utils.config import LoggingConfig
        from utils.logging_setup import configure_logging, redact_stderr, register_secret
        register_secret({secret!r})
        redact_stderr()
        configure_logging(LoggingConfig(level="INFO", format="json", _env_file=None))
        warnings.warn("connecting with {secret}", UserWarning, stacklevel=1)
        """
    )

    assert done.returncode == 0, done.stderr
    assert secret not in done.stderr
    (line,) = done.stderr.splitlines()
    assert orjson.loads(line)["logger"] == "py.warnings"
    assert "connecting with ***" in line
