"""Every setting the product reads, one pydantic-settings model per concern.

This module alone reads the environment, with ``utils.config_bot`` (the bot's own models,
loaded on first use). Each model reads the process environment and a ``.env`` file in the
working directory (the environment wins); empty values count as unset, so a copy of
``.env.example`` works as it is. One ``.env`` holds every model's variables, so a model
ignores the others' there; a keyword argument from Python, though, must be one of its
settings: a misspelt one raises, naming the closest known setting. Every bad value raises one
``SettingsError`` (``BinanceConfigError`` for ``BinanceConfig``) naming the variable or keyword
and its value, never a secret's value. This module imports nothing from ``utils.binance``.
"""

import difflib
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self, get_args
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.sources import ENV_FILE_SENTINEL, DotenvType

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pydantic_core import ErrorDetails

    from utils.config_bot import AlarmConfig, Settings, TelegramConfig

__all__ = (  # the bot's own models live in utils.config_bot and load on first use
    "AlarmConfig",
    "BinanceConfig",
    "BinanceConfigError",
    "LoggingConfig",
    "RedisConfig",
    "Settings",
    "SettingsError",
    "TelegramConfig",
)

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_REDIS_SCHEMES: Final = frozenset({"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"})
_EGRESS_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")


class SettingsError(ValueError):
    """A setting is malformed or unknown. ``variable`` names what set it: the environment
    variable, or the keyword argument when the value came from Python."""

    def __init__(self, message: str, *, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


class BinanceConfigError(SettingsError):
    """A Binance client setting is malformed or unknown, or its private key file unusable.

    ``utils.binance.binance_exceptions`` re-exports it; it is a settings error, not a
    ``BinanceError``: nothing was sent to Binance.
    """


class EnvModel(BaseSettings):
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

    # Keyword arguments refused with a reason (upper-case name -> why, and what to do).
    _REFUSED: ClassVar[Mapping[str, str]] = {}
    # Names people reach for (lower-case) -> the setting that does it; before difflib's guess.
    _SYNONYMS: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **values: Any) -> None:
        """Python callers: every keyword must name a setting (field name or variable, in any
        case); ``_env_file`` and the other underscored ones are pydantic-settings' own.

        Raises:
            SettingsError: (BinanceConfigError for BinanceConfig) naming the keyword or
                variable, the closest known setting for an unknown keyword.
        """
        given = {key.lower(): key for key in values if not key.startswith("_")}
        cls = type(self)
        cls._check_keywords(given.values())
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = [cls._describe(error, given) for error in exc.errors()]
            message = "; ".join(text for text, _ in problems)
            # Not chained: pydantic's own report prints the raw input, secrets included.
            raise cls._error(message, variable=problems[0][1]) from None

    @classmethod
    def from_env(cls, *, _env_file: DotenvType | None = ENV_FILE_SENTINEL) -> Self:
        """Read the environment and ``.env`` (or ``_env_file``; ``None`` reads no file).

        Raises:
            SettingsError: (BinanceConfigError for BinanceConfig) naming the bad variable.
        """
        return cls(_env_file=_env_file)

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
    def keywords(cls) -> dict[str, str]:
        """What a Python caller may pass: each field's name and alias, lower-cased, mapped to
        its usual spelling (pydantic-settings matches keywords in any case)."""
        spelled: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            spelled[name] = name
            if isinstance(field.validation_alias, str):
                spelled[field.validation_alias.lower()] = field.validation_alias
        return spelled

    @classmethod
    def _check_keywords(cls, given: "Iterable[str]") -> None:
        known = cls.keywords()
        for key in given:
            if key.lower() not in known:
                raise cls._error(cls._unknown(key, known), variable=key)

    @classmethod
    def _unknown(cls, key: str, known: Mapping[str, str]) -> str:
        name = cls.__name__
        refused = cls._REFUSED.get(key.upper())
        if refused is not None:
            return f"{key} is not a {name} setting: {refused}"
        for field, variables in cls.env_names().items():
            if key.upper() in variables:
                return f"{key} is an environment variable; in Python pass {field}="
        match = cls._SYNONYMS.get(key.lower())
        if match is None:
            close = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.6)
            match = known[close[0]] if close else None
        if match is None:
            return f"{name} has no setting {key!r}; .env.example lists every setting"
        spelled = match.upper() if key.isupper() else match.lower()
        return f"{name} has no setting {key!r}; did you mean {spelled}?"

    @classmethod
    def _error(cls, message: str, *, variable: str | None) -> SettingsError:
        return SettingsError(message, variable=variable)

    @classmethod
    def _describe(cls, error: "ErrorDetails", given: Mapping[str, str]) -> tuple[str, str | None]:
        """One problem as text, and the variable or keyword (``given``) that set the value."""
        loc = error["loc"]
        msg = str(error["msg"]).removeprefix("Value error, ")
        if not loc:
            return msg, None
        key = str(loc[0])
        field_name, variable = cls._field_for(key)
        variable = given.get(key.lower(), variable)  # a keyword wins over the environment
        items = "".join(f" item {part + 1}" for part in loc[1:] if isinstance(part, int))
        field = cls.model_fields.get(field_name) if field_name else None
        if field is not None and SecretStr in (field.annotation, *get_args(field.annotation)):
            return f"{variable}{items} (value hidden) is not valid: {msg}", variable
        value = error.get("input")
        shown = str(value) if isinstance(value, PurePath) else value
        return f"{variable}{items}={shown!r} is not valid: {msg}", variable

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


def _per_window(rate: float, period_s: float) -> tuple[int, float]:
    count = max(1, math.floor(rate))
    return count, period_s * count / rate


def absolute_url(value: str) -> str:
    """``value`` without a trailing slash; refused unless scheme and host are there."""
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        raise ValueError("expected an absolute URL such as https://host[:port]")
    return value


class BinanceConfig(EnvModel):
    """Binance client settings: credentials, endpoints, timeouts and protection mechanisms.

    The seed's names work as written, as keywords or variables: ``MAX_REQUESTS_PER_SECOND``,
    ``LIMITER_RATE``/``LIMITER_PERIOD`` and ``MIN_REQUEST_INTERVAL`` (optional caps on top of
    the weight limiter), ``MAX_WEBSOCKET_CONNECTIONS``, ``ENABLE_RATE_LIMIT_CHECKS``;
    ``REQUEST_WEIGHTS`` is refused, saying why.
    """

    model_config = SettingsConfigDict(env_prefix="BINANCE_")

    _REFUSED: ClassVar[Mapping[str, str]] = {
        "REQUEST_WEIGHTS": (
            "the client knows every endpoint's weight from Binance's own specs, per parameter "
            "(depth's limit, a ticker with or without symbol), and corrects its count from the "
            "X-MBX-USED-WEIGHT headers, so a hand-written table could only be wrong (the "
            "seed's gives POST /api/v3/order 10 and GET /api/v3/account 10; Binance charges "
            "1 and 20). For more headroom raise BINANCE_RATE_LIMIT_MARGIN, or cap requests "
            "with MAX_REQUESTS_PER_SECOND"
        ),
    }
    _SYNONYMS: ClassVar[Mapping[str, str]] = {
        "api_secret": "secret_key",
        "timeout": "request_timeout",
        "max_retries": "retry_attempts",
        "backoff_factor": "retry_base_delay_s",
        "max_connections": "MAX_WEBSOCKET_CONNECTIONS",
        "max_pool_size": "MAX_WEBSOCKET_CONNECTIONS",
    }

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
    # The seed's "monitoring": ratelimit.threshold events (admin alerts) at 80 % and 95 % of a
    # weight pool. The limiter itself is always on.
    enable_rate_limit_checks: bool = Field(
        default=True, validation_alias="ENABLE_RATE_LIMIT_CHECKS"
    )
    # The seed's self-imposed caps on requests, on top of the weight limiter (which alone
    # keeps Binance's limits); off by default. Every REST request, retries included, passes
    # each cap set: see ``request_caps``.
    max_requests_per_second: float | None = Field(
        default=None, gt=0, validation_alias="MAX_REQUESTS_PER_SECOND"
    )
    limiter_rate: float | None = Field(default=None, gt=0, validation_alias="LIMITER_RATE")
    # LIMITER_RATE's window in seconds; unset is 1 s.
    limiter_period: float | None = Field(default=None, gt=0, validation_alias="LIMITER_PERIOD")
    min_request_interval: float | None = Field(
        default=None, gt=0, validation_alias="MIN_REQUEST_INTERVAL"
    )
    redis_retry_s: float = Field(default=5.0, gt=0)
    # BINANCE_EGRESS_ID: the public IP this process reaches Binance from, by a name of your
    # choice (Binance counts weight per IP). With REDIS_URL, processes with the same id share
    # one weight budget and its 429/418 pauses; give each machine with its own IP its own id
    # and each gets the full budget. Orders are counted per account: shared by every id.
    egress_id: str = "default"
    cache_enabled: bool = True
    cache_max_entries: int = Field(default=10_000, ge=1)
    retry_attempts: int = Field(default=3, ge=0)
    retry_base_delay_s: float = Field(default=0.2, ge=0)
    retry_max_delay_s: float = Field(default=5.0, ge=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=30.0, gt=0)

    @classmethod
    def _error(cls, message: str, *, variable: str | None) -> SettingsError:
        return BinanceConfigError(message, variable=variable)

    @property
    def has_credentials(self) -> bool:
        """An API key plus something to sign with: an HMAC secret or a private key file."""
        return self.api_key is not None and (
            self.secret_key is not None or self.private_key_path is not None
        )

    @property
    def request_caps(self) -> tuple[tuple[int, float], ...]:
        """The caps set, each as "at most N requests in any S seconds": ``(N, S)``.

        ``MAX_REQUESTS_PER_SECOND=r`` is ``r`` per second and ``LIMITER_RATE=r`` with
        ``LIMITER_PERIOD=p`` is ``r`` per ``p`` seconds (a fractional ``r`` becomes whole
        requests over a proportionally longer window: 2.5/s is 2 per 0.8 s);
        ``MIN_REQUEST_INTERVAL=s`` is 1 per ``s`` seconds.
        """
        caps = []
        if self.max_requests_per_second is not None:
            caps.append(_per_window(self.max_requests_per_second, 1.0))
        if self.limiter_rate is not None:
            caps.append(_per_window(self.limiter_rate, self.limiter_period or 1.0))
        if self.min_request_interval is not None:
            caps.append((1, self.min_request_interval))
        return tuple(caps)

    @field_validator("private_key_path")
    @classmethod
    def _check_key_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value.expanduser()
        if not path.exists():
            raise ValueError("no such file; give the path of your PEM private key file")
        if not path.is_file():
            raise ValueError("not a file; give the path of your PEM private key file")
        if not os.access(path, os.R_OK):
            raise ValueError("this process may not read that file; check its permissions")
        return path

    @field_validator("limiter_period")
    @classmethod
    def _check_limiter_period(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and "limiter_rate" in info.data and info.data["limiter_rate"] is None:
            raise ValueError("it is LIMITER_RATE's period and means nothing alone: set both")
        return value

    @field_validator("base_url", "futures_base_url", "ws_url", "futures_ws_url", "ws_api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return absolute_url(value)

    @field_validator("egress_id")
    @classmethod
    def _check_egress_id(cls, value: str) -> str:
        if not _EGRESS_ID.fullmatch(value):
            raise ValueError(
                "expected 1 to 64 letters, digits, '.', '_' or '-' naming the public IP (such "
                "as eu-1 or 203.0.113.7); it becomes part of Redis key names"
            )
        return value

    @field_validator("retry_max_delay_s")
    @classmethod
    def _check_max_delay(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("retry_base_delay_s")
        if base is not None and value < base:
            raise ValueError(f"must be at least BINANCE_RETRY_BASE_DELAY_S ({base})")
        return value


class RedisConfig(EnvModel):
    """Where Redis is; without a URL the bot uses its embedded, in-process defaults."""

    model_config = SettingsConfigDict(env_prefix="REDIS_")

    url: SecretStr | None = None  # may carry a password
    key_prefix: str = Field(default="tgbot", min_length=1, pattern=r"^\S+$")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in _REDIS_SCHEMES:
            raise ValueError(
                "expected redis://, rediss://, unix:// or redis+cluster://host:port[,host:port]"
            )
        return value

    @property
    def password(self) -> str | None:
        """The password inside the URL, so that it can be masked in logs on its own."""
        return urlsplit(self.url.get_secret_value()).password if self.url else None


class LoggingConfig(EnvModel):
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


_BOT_MODELS: Final = frozenset({"AlarmConfig", "Settings", "TelegramConfig"})


def __getattr__(name: str) -> Any:
    """The bot's models (``TelegramConfig``, ``AlarmConfig``, ``Settings``), loaded when first
    asked for: a Binance client alone never builds them."""
    if name in _BOT_MODELS:
        from utils import config_bot  # noqa: PLC0415 - on first use

        return getattr(config_bot, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
