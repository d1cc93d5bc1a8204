"""Settings come from the environment and .env, and bad values are reported by variable."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from utils.binance.binance_exceptions import BinanceConfigError
from utils.config import (
    BinanceConfig,
    LoggingConfig,
    RedisConfig,
    Settings,
    SettingsError,
    TelegramConfig,
)

_MODELS = (BinanceConfig, RedisConfig, TelegramConfig, LoggingConfig)
_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


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


def test_a_private_key_file_counts_as_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "the-api-key")
    monkeypatch.setenv("BINANCE_PRIVATE_KEY_PATH", "/keys/ed25519.pem")

    config = BinanceConfig.from_env()

    assert config.private_key_path == Path("/keys/ed25519.pem")
    assert config.has_credentials


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
