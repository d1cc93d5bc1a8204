"""One app-facing API: ``binance_a.__all__`` lists everything app code may use, the package
re-exports exactly that list, every name resolves, and the pydantic models still load only
when one is asked for."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import utils.binance
from utils.binance import binance_a, binance_exceptions, binance_models, binance_ws_events
from utils.binance.binance_private import PrivateEndpoints
from utils.binance.binance_public import PublicEndpoints
from utils.binance.binance_streams import StreamMethods

SEED_ALIASES = (
    "get_symbol_price",
    "get_order_book",
    "get_account",
    "get_account_balance",
    "place_order",
)


def test_the_package_exports_exactly_the_facades_list() -> None:
    assert utils.binance.__all__ == binance_a.__all__
    assert len(set(binance_a.__all__)) == len(binance_a.__all__)


def test_every_listed_name_resolves_to_the_same_object_in_both() -> None:
    for name in binance_a.__all__:
        assert getattr(utils.binance, name) is getattr(binance_a, name), name


def test_the_list_is_complete_errors_models_enums_results_streams() -> None:
    public = set(binance_a.__all__)
    assert set(binance_exceptions.__all__) <= public
    assert set(binance_models.__all__) <= public
    # the stream events and callback types; the parsing functions are the manager's
    assert {n for n in binance_ws_events.__all__ if n[0].isupper()} <= public
    assert {"KlineInterval", "Market", "OrderSide", "OrderType", "TimeInForce"} <= public
    assert {"PriceSnapshot", "Portfolio", "AssetValue", "BinanceEvent", "EventBus"} <= public
    assert {"BinanceClient", "BinanceConfig", "StreamSubscription"} <= public


def test_importing_the_package_loads_no_model_until_one_is_asked_for() -> None:
    code = (
        "import sys, utils.binance\n"
        "print('utils.binance.binance_models' in sys.modules)\n"
        "from utils.binance import Kline\n"
        "print('utils.binance.binance_models' in sys.modules, Kline.__name__)\n"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "True", "Kline"]


@pytest.mark.parametrize("module", [utils.binance, binance_a], ids=lambda m: m.__name__)
def test_an_unknown_name_is_an_attribute_error(module: Any) -> None:
    with pytest.raises(AttributeError, match="NoSuchName"):
        _ = module.NoSuchName


def test_seed_spellings_are_aliases_on_the_facade_not_in_the_helpers() -> None:
    for name in SEED_ALIASES:
        assert name in vars(binance_a.BinanceClient), name
        assert not any(name in vars(h) for h in (PublicEndpoints, PrivateEndpoints, StreamMethods))
