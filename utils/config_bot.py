"""The bot's settings beside the Binance client's: Telegram (token, access, delivery), alarms,
and ``Settings``, every model loaded together. Kept apart from ``utils.config`` so that a
Binance client alone never builds them; ``utils.config`` still answers for these names.
"""

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, Literal, Self

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict
from pydantic_settings.sources import ENV_FILE_SENTINEL, DotenvType

from utils.config import (
    BinanceConfig,
    EnvModel,
    LoggingConfig,
    RedisConfig,
    absolute_url,
)

__all__ = ("AlarmConfig", "Settings", "TelegramConfig")

# As issued by @BotFather: the bot's numeric id, a colon, then the secret part.
_BOT_TOKEN: Final = re.compile(r"\d+:[A-Za-z0-9_-]+")
# Telegram's rule for setWebhook's secret_token.
_WEBHOOK_SECRET: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramConfig(EnvModel):
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
    # Updates received and not yet handled (SQLite when REDIS_URL is unset); default: the
    # file intake.sqlite3 beside outbox_path. A process that dies holding some leaves them to
    # the next one once its lease (Redis) lapses.
    intake_path: Path | None = None
    intake_lease_s: float = Field(default=10.0, gt=0)
    # With REDIS_URL and no WEBHOOK_URL: one process long-polls, elected by a Redis lease it
    # renews every third of this; the others stand by, and one takes over about this long
    # after the poller dies (a third of it after the poller stops).
    poll_lease_s: float = Field(default=10.0, gt=0)
    # Telegram's flood limits, kept by scheduling (TELEGRAM.md section 1).
    global_rate: float = Field(default=25.0, gt=0)
    chat_interval_s: float = Field(default=1.0, ge=0)
    group_interval_s: float = Field(default=3.0, ge=0)
    delivery_concurrency: int = Field(default=4, ge=1, le=64)
    delivery_lease_s: float = Field(default=10.0, gt=0)
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    # A reply Telegram refuses (429, 5xx, network) is retried this long, then queued.
    reply_retry_s: float = Field(default=60.0, ge=0)
    alert_cooldown_s: float = Field(default=300.0, ge=0)
    # Per-user command throttle: a steady rate and a small burst.
    throttle_rate: float = Field(default=1.0, gt=0)
    throttle_burst: int = Field(default=3, ge=1)
    # A /price that met a Binance outage retries with backoff for this long, then gives up.
    price_retry_s: float = Field(default=300.0, gt=0)

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
        return None if value is None else absolute_url(value)

    @property
    def webhook_secret_value(self) -> str | None:
        """``WEBHOOK_SECRET`` in plain text (for setWebhook and the header check), or None."""
        return self.webhook_secret.get_secret_value() if self.webhook_secret else None

    @property
    def intake_file(self) -> Path:
        """The SQLite intake: ``TELEGRAM_INTAKE_PATH``, else intake.sqlite3 beside the outbox."""
        return self.intake_path or self.outbox_path.with_name("intake.sqlite3")

    @property
    def admin_ids(self) -> frozenset[int]:
        """Users who may run admin commands: ADMIN_USER_IDS, plus ADMIN_CHAT_ID when it is a
        private chat (a positive id is a user's own chat)."""
        ids = set(self.admin_user_ids)
        if self.admin_chat_id is not None and self.admin_chat_id > 0:
            ids.add(self.admin_chat_id)
        return frozenset(ids)


class AlarmConfig(EnvModel):
    """Price alarms: who may set them, how many, where they are kept (a SQLite file when
    REDIS_URL is unset) and how long one process's engine holds the lead."""

    model_config = SettingsConfigDict(env_prefix="ALARM_")

    # "all": everyone may set alarms; "users": only ALLOWED_USER_IDS (and admins).
    allowed: Literal["all", "users"] = Field(default="all", validation_alias="ALARMS_ALLOWED")
    per_chat: int = Field(default=50, ge=1, validation_alias="ALARMS_PER_CHAT")
    global_cap: int = Field(default=1_000_000, ge=1, validation_alias="ALARMS_GLOBAL_CAP")
    # With Redis, one process evaluates alarms; another takes over this long after it dies.
    lease_s: float = Field(default=10.0, gt=0)
    store_path: Path = Path("data/alarms.sqlite3")
    # How often expired alarms are looked for (and their users told).
    sweep_s: float = Field(default=30.0, gt=0)

    @field_validator("allowed", mode="before")
    @classmethod
    def _lower_allowed(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """All settings of the bot, loaded together."""

    binance: BinanceConfig
    redis: RedisConfig
    telegram: TelegramConfig
    logging: LoggingConfig
    alarms: AlarmConfig = dataclasses.field(default_factory=AlarmConfig)

    @classmethod
    def from_env(cls, *, _env_file: DotenvType | None = ENV_FILE_SENTINEL) -> Self:
        """Load every model; the first malformed one raises (see ``EnvModel.from_env``)."""
        return cls(
            binance=BinanceConfig.from_env(_env_file=_env_file),
            redis=RedisConfig.from_env(_env_file=_env_file),
            telegram=TelegramConfig.from_env(_env_file=_env_file),
            logging=LoggingConfig.from_env(_env_file=_env_file),
            alarms=AlarmConfig.from_env(_env_file=_env_file),
        )

    def secret_values(self) -> tuple[str, ...]:
        """Every secret's plain value, to register with the log redactor; also the parts that
        travel alone: the bot token's secret half, a Redis URL's password, each line of a PEM
        key pasted into BINANCE_API_SECRET."""
        values = [
            value.get_secret_value()
            for model in (self.binance, self.redis, self.telegram, self.logging)
            for value in vars(model).values()
            if isinstance(value, SecretStr)
        ]
        if self.telegram.bot_token is not None:
            values.append(self.telegram.bot_token.get_secret_value().partition(":")[2])
        if self.redis.password:
            values.append(self.redis.password)
        for value in list(values):
            if "\n" in value:
                values.extend(line.strip() for line in value.splitlines() if "-----" not in line)
        return tuple(dict.fromkeys(value for value in values if value))
