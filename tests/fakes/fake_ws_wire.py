"""Wire shapes of the fake Binance WebSocket server, without sockets: event payload builders,
the futures route of each stream (BINANCE.md §1), the stream control protocol and its error
replies (§8), and the spot WS-API user-data requests (§9). ``fake_ws`` does the I/O.

Payload builders give realistic events: prices and quantities as strings, ``E`` in epoch ms.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import orjson

from tests.fakes.fake_market import ApiError
from tests.fakes.fake_signing import missing_param

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tests.fakes.fake_signing import KeyRing

__all__ = (
    "ApiSession",
    "Control",
    "Price",
    "UserDataApi",
    "agg_trade",
    "book_ticker",
    "futures_route",
    "kline",
    "listen_key_expired",
    "mark_price",
    "mark_price_array",
    "mini_ticker",
    "mini_ticker_array",
    "now_ms",
    "parse_control",
    "server_shutdown_event",
    "ticker",
    "too_many_streams",
)

Price = Decimal | str | int | float
METHODS: Final = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_ID_TEXT = re.compile(r"[A-Za-z0-9-]{1,36}")  # "alphanumeric, max 36"; UUIDs carry hyphens
_INT64 = 2**63
_PUBLIC_KINDS = frozenset({"bookTicker", "rpiDepth", "trade"})
_MARKET_KINDS = frozenset(
    {
        "aggTrade",
        "markPrice",
        "miniTicker",
        "ticker",
        "forceOrder",
        "compositeIndex",
        "contractInfo",
        "assetIndex",
    }
)
_INTERVAL_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_WEIGHT = 2  # a WS-API connect and each user-data request (BINANCE.md §9)


def now_ms() -> int:
    return int(time.time() * 1000)


# --- payloads ------------------------------------------------------------------------------
def ticker(
    symbol: str,
    price: Price,
    *,
    open_price: Price | None = None,
    volume: Price = 1000,
    futures: bool = False,
) -> dict[str, Any]:
    """A ``24hrTicker`` event; spot adds ``x``, best bid ``b``/``B`` and ask ``a``/``A``."""
    c, o = (
        _dec(price),
        _dec(open_price if open_price is not None else _dec(price) * Decimal("0.98")),
    )
    v, t = _dec(volume), now_ms()
    out: dict[str, Any] = {"e": "24hrTicker", "E": t, "s": symbol.upper()}
    out.update(p=_fmt(c - o), P=_fmt((c - o) / o * 100, 3), w=_fmt((c + o) / 2))
    if not futures:
        out["x"] = _fmt(o)
    out.update(c=_fmt(c), Q=_fmt(Decimal("0.01")))
    if not futures:
        out.update(b=_fmt(c * Decimal("0.9999")), B="1.00000000")
        out.update(a=_fmt(c * Decimal("1.0001")), A="1.00000000")
    out.update(o=_fmt(o), h=_fmt(max(o, c) * Decimal("1.01")), l=_fmt(min(o, c) * Decimal("0.99")))
    out.update(v=_fmt(v), q=_fmt(v * (c + o) / 2), O=t - 86_400_000, C=t, F=0, L=18150, n=18151)
    return out


def mini_ticker(
    symbol: str, price: Price, *, open_price: Price | None = None, volume: Price = 1000
) -> dict[str, Any]:
    """A ``24hrMiniTicker`` event (spot and futures share the shape)."""
    full = ticker(symbol, price, open_price=open_price, volume=volume, futures=True)
    keep = ("E", "s", "c", "o", "h", "l", "v", "q")
    return {"e": "24hrMiniTicker", **{k: full[k] for k in keep}}


def mini_ticker_array(prices: Mapping[str, Price]) -> list[dict[str, Any]]:
    """The ``!miniTicker@arr`` payload: one mini ticker per symbol."""
    return [mini_ticker(symbol, price) for symbol, price in prices.items()]


def mark_price(
    symbol: str,
    price: Price,
    funding: Price = "0.0001",
    *,
    index_price: Price | None = None,
    next_funding_ms: int | None = None,
) -> dict[str, Any]:
    """A futures ``markPriceUpdate`` event; ``T`` defaults to the next 8-hour mark."""
    t, p = now_ms(), _dec(price)
    nxt = next_funding_ms or (t // 28_800_000 + 1) * 28_800_000
    i = _dec(index_price) if index_price is not None else p * Decimal("0.9999")
    out: dict[str, Any] = {"e": "markPriceUpdate", "E": t, "s": symbol.upper(), "p": _fmt(p)}
    out.update(i=_fmt(i), P=_fmt(p), r=_fmt(_dec(funding)), T=nxt)
    return out


def mark_price_array(
    prices: Mapping[str, Price], funding: Price = "0.0001"
) -> list[dict[str, Any]]:
    """The ``!markPrice@arr`` payload."""
    return [mark_price(symbol, price, funding) for symbol, price in prices.items()]


def book_ticker(
    symbol: str,
    bid: Price,
    ask: Price,
    *,
    bid_qty: Price = 1,
    ask_qty: Price = 1,
    update_id: int = 400900217,
    futures: bool = False,
) -> dict[str, Any]:
    """Best bid and ask: spot has no ``e``/``E`` (``{u,s,b,B,a,A}``), futures adds them."""
    head: dict[str, Any] = {"u": update_id}
    if futures:
        t = now_ms()
        head = {"e": "bookTicker", "u": update_id, "E": t, "T": t}
    return {
        **head,
        "s": symbol.upper(),
        "b": _fmt(_dec(bid)),
        "B": _fmt(_dec(bid_qty)),
        "a": _fmt(_dec(ask)),
        "A": _fmt(_dec(ask_qty)),
    }


def kline(
    symbol: str,
    interval: str = "1m",
    closed: bool = False,
    *,
    close: Price = 100,
    open_price: Price | None = None,
    start_ms: int | None = None,
) -> dict[str, Any]:
    """A ``kline`` event; ``x`` is true once the candle is closed."""
    t, c = now_ms(), _dec(close)
    o = _dec(open_price) if open_price is not None else c
    step = _interval_ms(interval)
    start = start_ms if start_ms is not None else t // step * step
    k: dict[str, Any] = {"t": start, "T": start + step - 1, "s": symbol.upper(), "i": interval}
    k.update(f=100, L=200, o=_fmt(o), c=_fmt(c), h=_fmt(max(o, c)), l=_fmt(min(o, c)))
    k.update(v="10.00000000", n=100, x=closed, q=_fmt(c * 10), V="5.00000000", Q=_fmt(c * 5))
    return {"e": "kline", "E": t, "s": symbol.upper(), "k": {**k, "B": "0"}}


def agg_trade(
    symbol: str,
    price: Price,
    qty: Price = "0.001",
    *,
    trade_id: int = 1,
    buyer_maker: bool = False,
    futures: bool = False,
) -> dict[str, Any]:
    """An ``aggTrade`` event; spot adds the ignored ``M``."""
    t = now_ms()
    out: dict[str, Any] = {"e": "aggTrade", "E": t, "s": symbol.upper(), "a": trade_id}
    out.update(p=_fmt(_dec(price)), q=_fmt(_dec(qty)), f=trade_id * 10, l=trade_id * 10 + 2)
    out.update(T=t, m=buyer_maker)
    if not futures:
        out["M"] = True
    return out


def server_shutdown_event() -> dict[str, Any]:
    return {"e": "serverShutdown", "E": now_ms()}


def listen_key_expired(listen_key: str) -> dict[str, Any]:
    return {"e": "listenKeyExpired", "E": now_ms(), "listenKey": listen_key}


# --- futures routes ------------------------------------------------------------------------
def futures_route(stream: str) -> str | None:
    """``public`` or ``market`` per BINANCE.md §1; None when the stream is not in the mapping.

    ``<s>@trade`` goes to ``public`` [unverified]; listenKeys are the caller's business.
    """
    parts = stream.split("@")
    kind = parts[0][1:] if stream.startswith("!") else (parts[1] if len(parts) > 1 else "")
    if kind in _PUBLIC_KINDS or kind.startswith("depth"):
        return "public"
    if kind in _MARKET_KINDS or kind.startswith(("kline_", "continuousKline_")):
        return "market"
    return None


# --- the stream control protocol -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Control:
    """One well-formed control message."""

    method: str
    params: list[Any]
    id: int | str | None


def parse_control(text: str, *, futures: bool) -> Control | dict[str, Any]:
    """The request, or the error reply Binance sends for it (BINANCE.md §8)."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        return {
            "code": 3,
            "msg": f"Invalid JSON: expected value at line {e.lineno} column {e.colno}",
        }
    if not isinstance(msg, dict):
        return _invalid("expected a JSON object", None)
    rid = msg.get("id")
    if "id" not in msg or not _valid_id(rid, futures=futures):
        return _invalid("request ID must be an unsigned integer", None)
    method, params = msg.get("method"), msg.get("params", [])
    if method is None:
        return _invalid("missing field `method`", rid)
    if method not in METHODS:
        expected = ", ".join(f"`{m}`" for m in METHODS)
        return _invalid(f"unknown variant `{method}`, expected one of {expected}", rid)
    if set(msg) - {"method", "params", "id"} or not isinstance(params, list):
        return _invalid("too many parameters", rid)
    error = _params_error(method, params, rid)
    return error if error is not None else Control(method, params, rid)


def _params_error(method: str, params: list[Any], rid: int | str | None) -> dict[str, Any] | None:
    if method in ("SUBSCRIBE", "UNSUBSCRIBE") and not all(isinstance(p, str) for p in params):
        return _invalid("stream names must be strings", rid)
    if method not in ("SET_PROPERTY", "GET_PROPERTY"):
        return None
    if not params or not isinstance(params[0], str):
        return _invalid("property name must be a string", rid)
    if params[0] != "combined":
        return {"code": 0, "msg": "Unknown property", "id": rid}
    if method == "SET_PROPERTY" and (len(params) < 2 or not isinstance(params[1], bool)):
        return {"code": 1, "msg": "Invalid value type: expected Boolean", "id": rid}
    return None


def too_many_streams(limit: int, rid: int | str | None) -> dict[str, Any]:
    """The answer to a SUBSCRIBE past the per-connection cap (wording [unverified])."""
    return _invalid(f"too many streams, at most {limit} per connection", rid)


# --- the spot WS-API's user-data requests --------------------------------------------------
@dataclass(slots=True)
class ApiSession:
    """One WS-API connection's user-data subscriptions: subscriptionId -> API key."""

    subscriptions: dict[int, str] = field(default_factory=dict)
    next_id: int = 0


class UserDataApi:
    """``userDataStream.subscribe.signature``, ``userDataStream.unsubscribe`` and
    ``session.subscriptions``; answers carry ``rateLimits`` from one REQUEST_WEIGHT minute."""

    def __init__(self, keys: KeyRing, *, weight_limit: int = 6000) -> None:
        self._keys, self._limit = keys, weight_limit
        self._used: dict[int, int] = {}

    def charge_connect(self) -> None:
        self._charge()

    def handle(self, session: ApiSession, text: str) -> tuple[dict[str, Any], list[int]]:
        """The answer, and the subscriptionIds this request ended (each owes an
        ``eventStreamTerminated``)."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return self._error(None, ApiError(400, -1100, "Malformed request: invalid JSON.")), []
        if not isinstance(msg, dict):
            return self._error(None, ApiError(400, -1100, "Malformed request.")), []
        rid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
        self._charge()
        ended: list[int] = []
        try:
            if not isinstance(params, dict):
                raise ApiError(400, -1100, "Malformed request: params must be an object.")
            if method == "userDataStream.subscribe.signature":
                result: Any = {"subscriptionId": self._subscribe(session, params)}
            elif method == "userDataStream.unsubscribe":
                ended, result = self._unsubscribe(session, params), {}
            elif method == "session.subscriptions":
                result = [{"subscriptionId": sid} for sid in session.subscriptions]
            else:
                raise ApiError(400, -1100, f"Unknown method '{method}'.")
        except ApiError as e:
            return self._error(rid, e), []
        return {
            "id": rid,
            "status": 200,
            "result": result,
            "rateLimits": self._rate_limits(),
        }, ended

    def _subscribe(self, session: ApiSession, params: dict[str, Any]) -> int:
        fields = {k: _param_text(v) for k, v in params.items()}
        for name in ("apiKey", "timestamp", "signature"):
            if not fields.get(name):
                raise missing_param(name)
        api_key, signature = fields["apiKey"], fields.pop("signature")
        self._keys.check_key(api_key)
        payload = "&".join(f"{k}={v}" for k, v in sorted(fields.items()))
        raw = f"{payload}&signature={signature}".encode()
        self._keys.check_signed(api_key, fields, (raw, b""), now_ms())
        if api_key in session.subscriptions.values():  # one per account per connection
            raise ApiError(400, -2035, "User Data Stream subscription already active.")
        sid, session.next_id = session.next_id, session.next_id + 1
        session.subscriptions[sid] = api_key
        return sid

    def _unsubscribe(self, session: ApiSession, params: dict[str, Any]) -> list[int]:
        sid = params.get("subscriptionId")
        if sid is None:
            ended = list(session.subscriptions)
        elif sid in session.subscriptions:
            ended = [sid]
        else:
            raise ApiError(400, -2036, "User Data Stream subscription not active.")
        for s in ended:
            del session.subscriptions[s]
        return ended

    def _charge(self) -> None:
        minute = now_ms() // 60_000
        self._used = {minute: self._used.get(minute, 0) + _WEIGHT}

    def _rate_limits(self) -> list[dict[str, Any]]:
        used = self._used.get(now_ms() // 60_000, 0)
        window = {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1}
        return [{**window, "limit": self._limit, "count": used}]

    def _error(self, rid: Any, e: ApiError) -> dict[str, Any]:
        error = {"code": e.code, "msg": e.msg}
        return {"id": rid, "status": e.status, "error": error, "rateLimits": self._rate_limits()}


# --- helpers -------------------------------------------------------------------------------
def _invalid(detail: str, rid: int | str | None) -> dict[str, Any]:
    return {"code": 2, "msg": f"Invalid request: {detail}", "id": rid}


def _valid_id(rid: object, *, futures: bool) -> bool:
    if isinstance(rid, bool):
        return False
    if futures:
        return isinstance(rid, int) and 0 <= rid < 2**64
    if rid is None:
        return True
    if isinstance(rid, int):
        return -_INT64 <= rid < _INT64
    return isinstance(rid, str) and _ID_TEXT.fullmatch(rid) is not None


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _interval_ms(interval: str) -> int:
    n, unit = int(interval[:-1]), interval[-1]
    return n * (2_592_000_000 if unit == "M" else _INTERVAL_MS[unit])


def _dec(value: Price | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _fmt(value: Decimal, places: int = 8) -> str:
    return f"{value:.{places}f}"
