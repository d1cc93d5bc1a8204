"""Every setting the product reads, one pydantic-settings model per concern.

This module alone reads the environment. Each model reads the process environment and a
``.env`` file in the working directory (the environment wins); empty values count as unset,
so a copy of ``.env.example`` works as it is. ``from_env()`` turns pydantic's report into one
error that names the variable and its bad value, and never shows a secret's value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, Literal, Self, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.sources import ENV_FILE_SENTINEL, DotenvType

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = (
    "BinanceConfig",
    "LoggingConfig",
    "RedisConfig",
    "Settings",
    "SettingsError",
    "TelegramConfig",
)

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_REDIS_SCHEMES: Final = frozenset({"redis", "rediss", "unix"})
# As issued by @BotFather: the bot's numeric id, a colon, then the secret part.
_BOT_TOKEN: Final = re.compile(r"\d+:[A-Za-z0-9_-]+")
# Telegram's rule for setWebhook's secret_token.
_WEBHOOK_SECRET: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")


class SettingsError(ValueError):
    """A setting outside Binance's is malformed; ``variable`` names the environment variable."""

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


class _EnvModel(BaseSettings):
    """Shared loading and error reporting; subclasses declare env_prefix and fields."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",  # one .env holds every model's variables
        validate_by_name=True,  # Python callers pass field names, the environment aliases
        frozen=True,
        defer_build=True,  # built when first loaded: a client alone never builds the bot's
    )

    @classmethod
    def from_env(cls, *, _env_file: DotenvType | None = ENV_FILE_SENTINEL) -> Self:
        """Read the environment and ``.env`` (or ``_env_file``; ``None`` reads no file).

        Raises:
            SettingsError: (BinanceConfigError for BinanceConfig) naming the bad variable.
        """
        try:
            return cls(_env_file=_env_file)
        except ValidationError as exc:
            problems = [cls._describe(error) for error in exc.errors()]
            message = "; ".join(text for text, _ in problems)
            # Not chained: pydantic's own report prints the raw input, secrets included.
            raise cls._error(message, variable=problems[0][1]) from None

    @classmethod
    def env_names(cls) -> dict[str, tuple[str, ...]]:
        """Each field's environment variables, the documented one first."""
        prefix = cls.model_config.get("env_prefix", "")
        names: dict[str, tuple[str, ...]] = {}
        for name, field in cls.model_fields.items():
            by_name = f"{prefix}{name}".upper()
            alias = field.validation_alias
            # validate_by_name makes pydantic-settings read PREFIX_NAME beside the alias.
            names[name] = (alias.upper(), by_name) if isinstance(alias, str) else (by_name,)
        return names

    @classmethod
    def _error(cls, message: str, *, variable: str | None) -> ValueError:
        return SettingsError(message, variable=variable)

    @classmethod
    def _describe(cls, error: ErrorDetails) -> tuple[str, str | None]:
        loc = error["loc"]
        msg = str(error["msg"]).removeprefix("Value error, ")
        if not loc:
            return msg, None
        field_name, variable = cls._field_for(str(loc[0]))
        items = "".join(f" item {part + 1}" for part in loc[1:] if isinstance(part, int))
        field = cls.model_fields.get(field_name) if field_name else None
        if field is not None and SecretStr in (field.annotation, *get_args(field.annotation)):
            return f"{variable}{items} (value hidden) is not valid: {msg}", variable
        return f"{variable}{items}={error.get('input')!r} is not valid: {msg}", variable

    @classmethod
    def _field_for(cls, key: str) -> tuple[str | None, str]:
        """The field a pydantic error location names, and the variable that set it.

        The location is the alias when the value came in under it, else the field's name.
        """
        env_names = cls.env_names()
        for name, field in cls.model_fields.items():
            if key == field.validation_alias:
                return name, env_names[name][0]
            if key == name:
                return name, env_names[name][-1]
        return None, key.upper()


def _url(value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        raise ValueError("expected an absolute URL such as https://host[:port]")
    return value


class BinanceConfig(_EnvModel):
    """Binance client settings: credentials, endpoints, timeouts and protection mechanisms."""

    model_config = SettingsConfigDict(env_prefix="BINANCE_")

    api_key: SecretStr | None = None
    # The seed's .env calls it BINANCE_API_SECRET; Python callers say secret_key=.
    secret_key: SecretStr | None = Field(default=None, validation_alias="BINANCE_API_SECRET")
    # A PEM Ed25519 or RSA private key, used to sign instead of an HMAC secret.
    private_key_path: Path | None = None
    base_url: str = "https://api.binance.com"
    futures_base_url: str = "https://fapi.binance.com"
    ws_url: str = "wss://stream.binance.com:9443"
    futures_ws_url: str = "wss://fstream.binance.com"
    # Spot WS-API (user data via userDataStream.subscribe.signature).
    ws_api_url: str = "wss://ws-api.binance.com:443/ws-api/v3"
    request_timeout: float = Field(default=10.0, gt=0)
    recv_window_ms: int = Field(default=5000, ge=1, le=60000)
    max_websocket_connections: int = Field(
        default=5, ge=1, validation_alias="MAX_WEBSOCKET_CONNECTIONS"
    )
    # Stream liveness: reconnect after this long without a frame while subscribed.
    ws_stall_s: float = Field(default=60.0, gt=0)
    # Move streams to a fresh connection before Binance's 24 h cut.
    ws_rotate_s: float = Field(default=82_800.0, gt=0)
    ws_backoff_base_s: float = Field(default=0.5, gt=0)
    ws_backoff_max_s: float = Field(default=60.0, gt=0)
    # Messages a stream subscriber may have unread before the overflow policy applies.
    ws_queue_size: int = Field(default=1000, ge=1)
    ws_connect_limit: int = Field(default=300, ge=1)
    ws_connect_window_s: float = Field(default=300.0, gt=0)
    # Futures user data: seconds between listenKey keepalives (Binance expires keys at 60 min).
    ws_listen_key_keepalive_s: float = Field(default=1800.0, gt=0)
    pool_size: int = Field(default=100, ge=1)
    time_sync_interval_s: float = Field(default=300.0, gt=0)
    rate_limit_margin: float = Field(default=0.05, ge=0, le=0.5)
    rate_limit_quiet_margin: float = Field(default=0.01, ge=0, le=0.5)
    rate_limit_guard_ms: int = Field(default=50, ge=0)
    rate_limit_max_pause_s: float = Field(default=30.0, ge=0)
    rate_limits_from_exchange: bool = True
    redis_retry_s: float = Field(default=5.0, gt=0)
    cache_enabled: bool = True
    cache_max_entries: int = Field(default=10_000, ge=1)
    retry_attempts: int = Field(default=3, ge=0)
    retry_base_delay_s: float = Field(default=0.2, ge=0)
    retry_max_delay_s: float = Field(default=5.0, ge=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=30.0, gt=0)

    @classmethod
    def _error(cls, message: str, *, variable: str | None) -> ValueError:
        # Imported here, not at the top: utils.binance's package imports the client, and the
        # client imports this module.
        from utils.binance.binance_exceptions import BinanceConfigError  # noqa: PLC0415

        return BinanceConfigError(message, variable=variable)

    @property
    def has_credentials(self) -> bool:
        """An API key plus something to sign with: an HMAC secret or a private key file."""
        return self.api_key is not None and (
            self.secret_key is not None or self.private_key_path is not None
        )

    @field_validator("base_url", "futures_base_url", "ws_url", "futures_ws_url", "ws_api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _url(value)

    @field_validator("retry_max_delay_s")
    @classmethod
    def _check_max_delay(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("retry_base_delay_s")
        if base is not None and value < base:
            raise ValueError(f"must be at least BINANCE_RETRY_BASE_DELAY_S ({base})")
        return value


class RedisConfig(_EnvModel):
    """Where Redis is; without a URL the bot uses its embedded, in-process defaults."""

    model_config = SettingsConfigDict(env_prefix="REDIS_")

    url: SecretStr | None = None  # may carry a password
    key_prefix: str = Field(default="tgbot", min_length=1, pattern=r"^\S+$")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in _REDIS_SCHEMES:
            raise ValueError("expected redis://, rediss:// or unix://")
        return value

    @property
    def password(self) -> str | None:
        """The password inside the URL, so that it can be masked in logs on its own."""
        return urlsplit(self.url.get_secret_value()).password if self.url else None


class TelegramConfig(_EnvModel):
    """The Telegram bot's token, who may use it, and how updates arrive."""

    model_config = SettingsConfigDict(env_prefix="TELEGRAM_")

    bot_token: SecretStr | None = Field(default=None, validation_alias="BOT_TOKEN")
    admin_chat_id: int | None = Field(default=None, validation_alias="ADMIN_CHAT_ID")
    # Comma-separated in the environment: ALLOWED_USER_IDS=1,2,3
    allowed_user_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, validation_alias="ALLOWED_USER_IDS"
    )
    # A local Bot API server instead of api.telegram.org.
    api_url: str | None = None
    webhook_url: str | None = Field(default=None, validation_alias="WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(default=None, validation_alias="WEBHOOK_SECRET")
    # Users who may run /stats (besides ADMIN_CHAT_ID when it is a user's private chat).
    admin_user_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, validation_alias="ADMIN_USER_IDS"
    )
    webhook_path: str = Field(default="/telegram/webhook", pattern=r"^/[\w/-]*$")
    # The bot's own HTTP server: the webhook, /healthz and /metrics. Port 0 picks a free one.
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    polling_timeout_s: int = Field(default=10, ge=0, le=50)
    # The delivery queue: a SQLite file when REDIS_URL is unset.
    outbox_path: Path = Path("data/outbox.sqlite3")
    outbox_capacity: int = Field(default=10_000, ge=1)
    # Telegram's flood limits, kept by scheduling (TELEGRAM.md section 1).
    global_rate: float = Field(default=25.0, gt=0)
    chat_interval_s: float = Field(default=1.0, ge=0)
    group_interval_s: float = Field(default=3.0, ge=0)
    delivery_concurrency: int = Field(default=4, ge=1, le=64)
    delivery_lease_s: float = Field(default=10.0, gt=0)
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    alert_cooldown_s: float = Field(default=300.0, ge=0)
    # Per-user command throttle: a steady rate and a small burst.
    throttle_rate: float = Field(default=1.0, gt=0)
    throttle_burst: int = Field(default=3, ge=1)

    @field_validator("bot_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _BOT_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("expected <digits>:<letters, digits, _ or -> as @BotFather gives")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("expected 1 to 256 characters among A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("allowed_user_ids", "admin_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_url", "webhook_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value)

    @property
    def webhook_secret_value(self) -> str | None:
        """``WEBHOOK_SECRET`` in plain text (for setWebhook and the header check), or None."""
        return self.webhook_secret.get_secret_value() if self.webhook_secret else None

    @property
    def admin_ids(self) -> frozenset[int]:
        """Users who may run admin commands: ADMIN_USER_IDS, plus ADMIN_CHAT_ID when it is a
        private chat (a positive id is a user's own chat)."""
        ids = set(self.admin_user_ids)
        if self.admin_chat_id is not None and self.admin_chat_id > 0:
            ids.add(self.admin_chat_id)
        return frozenset(ids)


class LoggingConfig(_EnvModel):
    """How much is logged, and as what."""

    model_config = SettingsConfigDict(env_prefix="LOG_")

    level: str = "INFO"
    format: Literal["console", "json"] = "console"

    @field_validator("level", mode="before")
    @classmethod
    def _check_level(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().upper() not in LOG_LEVELS:
                raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
            return value.strip().upper()
        return value

    @field_validator("format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """All settings of the bot, loaded together."""

    binance: BinanceConfig
    redis: RedisConfig
    telegram: TelegramConfig
    logging: LoggingConfig

    @classmethod
    def from_env(cls, *, _env_file: DotenvType | None = ENV_FILE_SENTINEL) -> Self:
        """Load every model; the first malformed one raises (see ``_EnvModel.from_env``)."""
        return cls(
            binance=BinanceConfig.from_env(_env_file=_env_file),
            redis=RedisConfig.from_env(_env_file=_env_file),
            telegram=TelegramConfig.from_env(_env_file=_env_file),
            logging=LoggingConfig.from_env(_env_file=_env_file),
        )

    def secret_values(self) -> tuple[str, ...]:
        """Every secret's plain value, to register with the log redactor."""
        values = [
            value.get_secret_value()
            for model in (self.binance, self.redis, self.telegram, self.logging)
            for value in vars(model).values()
            if isinstance(value, SecretStr)
        ]
        if self.redis.password:
            values.append(self.redis.password)
        return tuple(value for value in values if value)
