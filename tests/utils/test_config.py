"""Settings come from the environment and .env, and bad values are reported by variable."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from utils.binance import binance_exceptions
from utils.config import (
    AlarmConfig,
    BinanceConfig,
    BinanceConfigError,
    LoggingConfig,
    RedisConfig,
    Settings,
    SettingsError,
    TelegramConfig,
)

_MODELS = (BinanceConfig, RedisConfig, TelegramConfig, LoggingConfig, AlarmConfig)
_ROOT = Path(__file__).resolve().parents[2]
_EXAMPLE = _ROOT / ".env.example"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting leaks in from the developer's shell or a .env in the repository."""
    for model in _MODELS:
        for names in model.env_names().values():
            for name in names:
                monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_binance_config_reads_the_seed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "the-api-key")
    monkeypatch.setenv("BINANCE_API_SECRET", "the-api-secret")
    monkeypatch.setenv("BINANCE_BASE_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("BINANCE_REQUEST_TIMEOUT", "30")

    config = BinanceConfig.from_env()

    assert config.api_key is not None
    assert config.api_key.get_secret_value() == "the-api-key"
    assert config.secret_key is not None
    assert config.secret_key.get_secret_value() == "the-api-secret"
    assert config.base_url == "http://127.0.0.1:8080"
    assert config.request_timeout == 30.0
    assert config.has_credentials


def test_binance_config_defaults_need_no_environment() -> None:
    config = BinanceConfig.from_env()

    assert config.base_url == "https://api.binance.com"
    assert config.recv_window_ms == 5000
    assert config.max_websocket_connections == 5
    assert not config.has_credentials


def test_binance_config_is_constructible_in_python_by_field_name() -> None:
    config = BinanceConfig(api_key="k", secret_key="s", _env_file=None)  # a test value

    assert config.secret_key is not None
    assert config.secret_key.get_secret_value() == "s"
    assert config.has_credentials


def test_python_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_SECRET", "from-env")
    monkeypatch.setenv("MAX_WEBSOCKET_CONNECTIONS", "9")

    config = BinanceConfig(secret_key="from-python", max_websocket_connections=2)  # a test value

    assert config.secret_key is not None
    assert config.secret_key.get_secret_value() == "from-python"
    assert config.max_websocket_connections == 2


def test_a_private_key_file_counts_as_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "ed25519.pem"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\n")  # read by the client, not here
    monkeypatch.setenv("BINANCE_API_KEY", "the-api-key")
    monkeypatch.setenv("BINANCE_PRIVATE_KEY_PATH", str(key_file))

    config = BinanceConfig.from_env()

    assert config.private_key_path == key_file
    assert config.has_credentials


@pytest.mark.parametrize(
    ("where", "problem"), [("missing.pem", "no such file"), (".", "not a file")]
)
def test_a_private_key_path_that_is_no_file_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, problem: str
) -> None:
    monkeypatch.setenv("BINANCE_PRIVATE_KEY_PATH", str(tmp_path / where))

    with pytest.raises(BinanceConfigError, match=problem) as raised:
        BinanceConfig.from_env()

    assert raised.value.variable == "BINANCE_PRIVATE_KEY_PATH"
    assert str(raised.value).startswith("BINANCE_PRIVATE_KEY_PATH=")


def test_a_malformed_timeout_names_the_variable_and_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BINANCE_REQUEST_TIMEOUT", "abc")

    with pytest.raises(BinanceConfigError) as raised:
        BinanceConfig.from_env()

    assert raised.value.variable == "BINANCE_REQUEST_TIMEOUT"
    assert str(raised.value).startswith("BINANCE_REQUEST_TIMEOUT='abc' is not valid: ")
    assert "valid number" in str(raised.value)


def test_an_out_of_range_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_RECV_WINDOW_MS", "70000")

    with pytest.raises(BinanceConfigError, match=r"^BINANCE_RECV_WINDOW_MS='70000' is not"):
        BinanceConfig.from_env()


@pytest.mark.parametrize(
    ("variable", "secret"),
    [
        ("BOT_TOKEN", "not-a-token-hunter2-hunter2"),
        ("WEBHOOK_SECRET", "spaces are not allowed hunter2"),
    ],
)
def test_a_malformed_secret_is_reported_without_its_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, secret: str
) -> None:
    monkeypatch.setenv(variable, secret)

    with pytest.raises(SettingsError) as raised:
        TelegramConfig.from_env()

    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable} (value hidden) is not valid")
    assert "hunter2" not in str(raised.value)
    # Not chained either: pydantic's own report would print the raw input.
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_a_redis_url_with_a_password_is_reported_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "http://user:hunter2hunter2@localhost:6379")

    with pytest.raises(SettingsError, match=r"^REDIS_URL \(value hidden\)") as raised:
        RedisConfig.from_env()

    assert "hunter2" not in str(raised.value)


def test_max_websocket_connections_uses_the_seed_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_WEBSOCKET_CONNECTIONS", "3")

    assert BinanceConfig.from_env().max_websocket_connections == 3


def test_max_websocket_connections_also_reads_the_prefixed_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BINANCE_MAX_WEBSOCKET_CONNECTIONS", "x")

    with pytest.raises(BinanceConfigError) as raised:
        BinanceConfig.from_env()

    assert raised.value.variable == "BINANCE_MAX_WEBSOCKET_CONNECTIONS"


def test_allowed_user_ids_parse_from_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOWED_USER_IDS", "1, 2,3")

    assert TelegramConfig.from_env().allowed_user_ids == [1, 2, 3]


def test_a_malformed_user_id_is_reported_by_position(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_USER_IDS", "1,abc")

    with pytest.raises(SettingsError, match=r"^ALLOWED_USER_IDS item 2='abc' is not valid"):
        TelegramConfig.from_env()


def test_log_level_is_case_insensitive_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert LoggingConfig.from_env().level == "DEBUG"

    monkeypatch.setenv("LOG_LEVEL", "verbose")
    with pytest.raises(SettingsError, match=r"^LOG_LEVEL='verbose' is not valid: expected one"):
        LoggingConfig.from_env()


def test_dotenv_is_read_and_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "BINANCE_REQUEST_TIMEOUT=7\nBINANCE_RECV_WINDOW_MS=1000\nBOT_TOKEN=42:from-dotenv\n"
    )
    monkeypatch.setenv("BINANCE_RECV_WINDOW_MS", "2000")

    settings = Settings.from_env()

    assert settings.binance.request_timeout == 7.0
    assert settings.binance.recv_window_ms == 2000
    assert settings.telegram.bot_token is not None
    assert settings.telegram.bot_token.get_secret_value() == "42:from-dotenv"


def test_dotenv_can_be_skipped_or_pointed_elsewhere(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BINANCE_REQUEST_TIMEOUT=7\n")
    other = tmp_path / "other.env"
    other.write_text("BINANCE_REQUEST_TIMEOUT=9\n")

    assert BinanceConfig.from_env(_env_file=None).request_timeout == 10.0
    assert BinanceConfig.from_env(_env_file=other).request_timeout == 9.0


def test_a_copy_of_the_example_file_loads_as_the_defaults(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(_EXAMPLE.read_text())

    settings = Settings.from_env()

    assert settings.binance == BinanceConfig.from_env(_env_file=None)
    assert settings.telegram.allowed_user_ids == []
    assert settings.redis.url is None


def test_repr_and_str_never_show_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "key-hunter2")
    monkeypatch.setenv("BINANCE_API_SECRET", "secret-hunter2")
    monkeypatch.setenv("BOT_TOKEN", "42:token-hunter2")
    monkeypatch.setenv("REDIS_URL", "redis://:pw-hunter2@localhost:6379/0")

    settings = Settings.from_env()

    for text in (repr(settings), str(settings), repr(settings.binance), str(settings.redis)):
        assert "hunter2" not in text


def test_secret_values_lists_every_secret_for_the_log_redactor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "key-hunter2")
    monkeypatch.setenv("REDIS_URL", "redis://:pw-hunter2@localhost:6379/0")

    values = Settings.from_env().secret_values()

    assert set(values) == {"key-hunter2", "redis://:pw-hunter2@localhost:6379/0", "pw-hunter2"}


def test_env_names_follow_the_seed_and_the_prefixes() -> None:
    binance = BinanceConfig.env_names()
    assert binance["api_key"] == ("BINANCE_API_KEY",)
    assert binance["secret_key"][0] == "BINANCE_API_SECRET"
    assert binance["max_websocket_connections"][0] == "MAX_WEBSOCKET_CONNECTIONS"
    assert TelegramConfig.env_names()["api_url"] == ("TELEGRAM_API_URL",)
    assert TelegramConfig.env_names()["bot_token"][0] == "BOT_TOKEN"
    assert RedisConfig.env_names()["url"] == ("REDIS_URL",)
    assert LoggingConfig.env_names()["format"] == ("LOG_FORMAT",)


def test_env_example_lists_every_setting_once() -> None:
    listed = [
        line.split("=", 1)[0]
        for line in _EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    documented = [names[0] for model in _MODELS for names in model.env_names().values()]

    assert len(listed) == len(set(listed)), "a variable is listed twice"
    assert sorted(listed) == sorted(documented)


def test_every_line_of_env_example_has_a_comment_above_it() -> None:
    lines = _EXAMPLE.read_text().splitlines()

    for above, line in itertools.pairwise(lines):
        if line and not line.startswith("#"):
            assert above.startswith("#"), f"{line!r} has no comment above it"


# --- Python keywords: the seed's settings, misspellings, errors ----------------------------


def test_the_seeds_final_settings_are_accepted_as_written() -> None:
    config = BinanceConfig(
        MAX_REQUESTS_PER_SECOND=3, MAX_WEBSOCKET_CONNECTIONS=5, ENABLE_RATE_LIMIT_CHECKS=True
    )

    assert config.max_requests_per_second == 3
    assert config.max_websocket_connections == 5
    assert config.enable_rate_limit_checks is True
    assert config.request_caps == ((3, 1.0),)


def test_no_cap_and_the_threshold_warnings_by_default() -> None:
    config = BinanceConfig.from_env()

    assert config.request_caps == ()
    assert config.enable_rate_limit_checks is True


def test_the_seeds_names_are_read_from_the_environment_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_REQUESTS_PER_SECOND", "2.5")
    monkeypatch.setenv("LIMITER_RATE", "10")
    monkeypatch.setenv("LIMITER_PERIOD", "2")
    monkeypatch.setenv("MIN_REQUEST_INTERVAL", "0.5")
    monkeypatch.setenv("ENABLE_RATE_LIMIT_CHECKS", "false")

    config = BinanceConfig.from_env()

    # 2.5/s as whole requests: 2 per 0.8 s; 10 per 2 s; one per 0.5 s.
    assert config.request_caps == ((2, 0.8), (10, 2.0), (1, 0.5))
    assert config.enable_rate_limit_checks is False


def test_limiter_rate_alone_is_per_second() -> None:
    assert BinanceConfig(LIMITER_RATE=10, _env_file=None).request_caps == ((10, 1.0),)


def test_limiter_period_without_a_rate_is_refused() -> None:
    with pytest.raises(BinanceConfigError, match=r"^LIMITER_PERIOD=2 is not valid") as raised:
        BinanceConfig(LIMITER_PERIOD=2, _env_file=None)

    assert raised.value.variable == "LIMITER_PERIOD"
    assert "LIMITER_RATE" in str(raised.value)


@pytest.mark.parametrize(
    ("keyword", "suggestion"),
    [
        ("timeout", "request_timeout"),  # the example
        ("MAX_REQUEST_PER_SECOND", "MAX_REQUESTS_PER_SECOND"),
        ("max_websocket_connection", "max_websocket_connections"),
        ("recv_window", "recv_window_ms"),
        ("api_secret", "secret_key"),
        ("max_retries", "retry_attempts"),
    ],
)
def test_an_unknown_keyword_is_refused_naming_the_closest_setting(
    keyword: str, suggestion: str
) -> None:
    with pytest.raises(BinanceConfigError) as raised:
        BinanceConfig(**{keyword: 30}, _env_file=None)

    assert raised.value.variable == keyword
    assert str(raised.value) == (
        f"BinanceConfig has no setting {keyword!r}; did you mean {suggestion}?"
    )


def test_a_keyword_like_nothing_known_points_to_the_example_file() -> None:
    with pytest.raises(BinanceConfigError, match=r"no setting 'zzz'; \.env\.example lists"):
        BinanceConfig(zzz=1, _env_file=None)


def test_an_environment_variable_name_as_a_keyword_points_to_the_field() -> None:
    with pytest.raises(BinanceConfigError, match="in Python pass api_key="):
        BinanceConfig(BINANCE_API_KEY="k", _env_file=None)


def test_request_weights_is_refused_saying_why() -> None:
    weights = {"/api/v3/ticker/price": 1, "/api/v3/order": 10, "/api/v3/account": 10}

    with pytest.raises(BinanceConfigError) as raised:
        BinanceConfig(REQUEST_WEIGHTS=weights, _env_file=None)

    assert raised.value.variable == "REQUEST_WEIGHTS"
    assert "X-MBX-USED-WEIGHT" in str(raised.value)
    assert "BINANCE_RATE_LIMIT_MARGIN" in str(raised.value)


def test_keywords_match_in_any_case() -> None:
    config = BinanceConfig(Max_Requests_Per_Second=4, RECV_WINDOW_MS=1000, _env_file=None)

    assert config.max_requests_per_second == 4
    assert config.recv_window_ms == 1000


def test_unknown_variables_in_the_environment_and_dotenv_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("TIMEOUT=30\nREQUEST_WEIGHTS={}\nBOT_TOKEN=42:abc\n")
    monkeypatch.setenv("BINANCE_TIMEOUT", "30")
    monkeypatch.setenv("SOMETHING_ELSE", "x")

    assert BinanceConfig().request_timeout == 10.0  # the shared .env holds others' variables
    assert BinanceConfig.from_env().request_timeout == 10.0


@pytest.mark.parametrize(
    ("keywords", "variable", "start"),
    [
        ({"request_timeout": "abc"}, "request_timeout", "request_timeout='abc' is not valid"),
        ({"MAX_WEBSOCKET_CONNECTIONS": 0}, "MAX_WEBSOCKET_CONNECTIONS", "MAX_WEBSOCKET_CON"),
        ({"max_requests_per_second": -1}, "max_requests_per_second", "max_requests_per_second"),
        ({"base_url": "api.binance.com"}, "base_url", "base_url='api.binance.com' is not"),
    ],
)
def test_a_bad_keyword_value_is_a_config_error_naming_the_keyword(
    keywords: dict[str, object], variable: str, start: str
) -> None:
    with pytest.raises(BinanceConfigError) as raised:
        BinanceConfig(**keywords, _env_file=None)

    assert raised.value.variable == variable
    assert str(raised.value).startswith(start)
    assert raised.value.__cause__ is None  # pydantic's report would print the raw input
    assert raised.value.__suppress_context__


def test_a_bad_secret_keyword_is_reported_without_its_value() -> None:
    with pytest.raises(BinanceConfigError) as raised:
        BinanceConfig(secret_key=["hunter2-hunter2"], _env_file=None)

    assert raised.value.variable == "secret_key"
    assert str(raised.value).startswith("secret_key (value hidden) is not valid")
    assert "hunter2" not in str(raised.value)


def test_a_bad_environment_value_still_names_the_variable_beside_good_keywords(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BINANCE_REQUEST_TIMEOUT", "abc")

    with pytest.raises(BinanceConfigError) as raised:
        BinanceConfig(MAX_REQUESTS_PER_SECOND=3)

    assert raised.value.variable == "BINANCE_REQUEST_TIMEOUT"


def test_the_other_models_refuse_unknown_keywords_too() -> None:
    with pytest.raises(SettingsError, match="did you mean bot_token") as raised:
        TelegramConfig(bot_tokn="42:abc", _env_file=None)

    assert not isinstance(raised.value, BinanceConfigError)


def test_a_config_error_is_a_settings_error_and_no_binance_error() -> None:
    assert binance_exceptions.BinanceConfigError is BinanceConfigError
    assert issubclass(BinanceConfigError, SettingsError)
    assert issubclass(BinanceConfigError, ValueError)
    assert not issubclass(BinanceConfigError, binance_exceptions.BinanceError)


def test_the_settings_module_imports_nothing_from_the_binance_package() -> None:
    probe = (
        "import sys, utils.config; "
        "print(sorted(m for m in sys.modules if m.startswith('utils.binance')))"
    )
    # A fresh interpreter (this one imported the client already); our own, a fixed probe.
    loaded = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe], cwd=_ROOT, capture_output=True, text=True, check=True
    )

    assert loaded.stdout.strip() == "[]"


def test_secret_values_include_the_token_secret_half_and_pasted_pem_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOT_TOKEN", "42:token-hunter2")
    pem = "-----BEGIN PRIVATE KEY-----\nline-one-hunter2\n-----END PRIVATE KEY-----\n"
    monkeypatch.setenv("BINANCE_API_SECRET", pem)

    values = Settings.from_env().secret_values()

    assert {"42:token-hunter2", "token-hunter2", "line-one-hunter2", pem} <= set(values)
