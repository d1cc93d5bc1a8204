"""The facade holds its parts: the public, private and stream helpers stand on ``Caller``
alone, so they work in any order and each on its own; a caller missing one of its four
methods cannot be built; and the client keeps one clock, Binance's."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.utils.binance.conftest import API_KEY, SECRET
from utils.binance import BinanceClient, BinanceFilterError, KlineInterval, Market
from utils.binance.binance_caller import Caller
from utils.binance.binance_private import PrivateEndpoints
from utils.binance.binance_public import PublicEndpoints
from utils.binance.binance_streams import StreamMethods
from utils.binance.binance_utils import make_signer

if TYPE_CHECKING:
    from tests.fakes.fake_binance import FakeBinance
    from utils.binance.binance_types import Endpoint, Params

HELPERS = (PublicEndpoints, PrivateEndpoints, StreamMethods)


class Borrowed(Caller):
    """Caller's four methods answered by a real client (what ``BinanceClient`` provides), and
    the host attributes the stream helper reads."""

    def __init__(self, client: BinanceClient) -> None:
        super().__init__()
        self.client = client
        self.config = client.config
        self._ws = client._ws
        self._user_streams = []
        self._api_key, self._signer = API_KEY, make_signer(SECRET)

    async def call_endpoint(self, endpoint: Endpoint, params: Params | None = None) -> Any:
        return await self.client.call_endpoint(endpoint, params)

    def now_ms(self) -> int:
        return self.client.now_ms()

    def check_credentials(self, endpoint: Endpoint) -> None:
        self.client.check_credentials(endpoint)

    async def place_order_checked(self, endpoint: Endpoint, params: Params) -> Any:
        return await self.client.place_order_checked(endpoint, params)


def composed(*helpers: type[Caller]) -> type[Borrowed]:
    """A class of ``helpers`` in the order given, over the borrowed caller."""
    return type("Composed", (*helpers, Borrowed), {})


@pytest.mark.parametrize(
    "helpers",
    list(itertools.permutations(HELPERS)),
    ids=lambda hs: "-".join(h.__name__ for h in hs),
)
async def test_the_helpers_work_in_any_order(
    client: BinanceClient, fake_binance: FakeBinance, helpers: tuple[type[Caller], ...]
) -> None:
    fake_binance.set_price("BTCUSDT", "65000")
    parts: Any = composed(*helpers)(client)
    assert (await parts.get_ticker_price("BTCUSDT")).price == Decimal(65000)
    order = await parts.new_order("BTCUSDT", side="BUY", quantity="0.001")
    assert order.symbol == "BTCUSDT"
    snapshot = await parts._stream_snapshot(Market.SPOT, "btcusdt@ticker")
    assert (snapshot["s"], snapshot["source"]) == ("BTCUSDT", "rest")
    assert (await parts.call("GET /api/v3/ticker/price", symbol="BTCUSDT"))["symbol"] == "BTCUSDT"


async def test_the_private_helper_alone_prices_a_market_order_itself(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    """No public helper behind it: the notional check fetches the last price through the
    caller, from the table entry."""
    fake_binance.set_price("BTCUSDT", "65000")
    private: Any = composed(PrivateEndpoints)(client)
    with pytest.raises(BinanceFilterError, match="last price"):
        await private.new_order("BTCUSDT", side="BUY", quantity="0.00005")
    assert fake_binance.count("GET /api/v3/ticker/price") == 1
    assert fake_binance.count("POST /api/v3/order") == 0


async def test_the_public_and_stream_helpers_alone_use_only_the_caller(
    client: BinanceClient,
) -> None:
    public: Any = composed(PublicEndpoints)(client)
    assert (await public.get_symbol_info("ETHUSDT")).symbol == "ETHUSDT"
    assert len(await public.get_candles("BTCUSDT", KlineInterval.M1, limit=3)) == 3
    streams: Any = composed(StreamMethods)(client)
    params = streams._user_stream_params()
    assert abs(params["timestamp"] - client.now_ms()) < 5_000
    assert params["apiKey"] == API_KEY


def test_a_caller_missing_a_method_fails_at_construction() -> None:
    class NoClock(PublicEndpoints):
        async def call_endpoint(self, endpoint: Endpoint, params: Params | None = None) -> Any:
            return None

        def check_credentials(self, endpoint: Endpoint) -> None:
            pass

        async def place_order_checked(self, endpoint: Endpoint, params: Params) -> Any:
            return None

    with pytest.raises(TypeError, match="now_ms"):
        NoClock()  # type: ignore[abstract]


def test_the_client_provides_every_method_of_the_caller() -> None:
    assert not BinanceClient.__abstractmethods__
    assert set(Caller.__abstractmethods__) == {
        "call_endpoint",
        "now_ms",
        "check_credentials",
        "place_order_checked",
    }
    for helper in HELPERS:
        assert helper.__bases__ == (Caller,), helper


async def test_one_clock_binances_decides_which_candles_have_closed(
    client: BinanceClient, fake_binance: FakeBinance
) -> None:
    """Binance runs two hours behind us: by our clock every candle would have closed, by
    Binance's (synced on the first signed call) the last one is still open."""
    fake_binance.clock_skew_s = -7200.0
    await client.get_account()  # a signed call: syncs the clock offset
    assert abs(client.now_ms() - (time.time() - 7200) * 1000) < 5_000
    candles = await client.get_candles("BTCUSDT", KlineInterval.M15, limit=4)
    assert [c.closed for c in candles] == [True, True, True, False]
    frame = await client.get_klines_dataframe("BTCUSDT", KlineInterval.M15, limit=4)
    assert frame.attrs["last_closed"] is False
