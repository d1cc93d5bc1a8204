"""Signed requests in practice: the clock offset comes from the fastest of three ``time``
calls and is measured again every ``BINANCE_TIME_SYNC_INTERVAL_S``; clock skew is healed by
one resync; and neither the key, the secret nor any signature ever reaches the logs or an
error message."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fakes.fake_binance import FakeBinance
from tests.utils.binance.conftest import API_KEY, SECRET, EventLog, make_config, no_redis
from utils.binance import BinanceAuthError, BinanceClient

if TYPE_CHECKING:
    import io
    from collections.abc import Callable
    from pathlib import Path


ACCOUNT = "GET /api/v3/account"
TIME = "GET /api/v3/time"


@pytest.mark.parametrize(
    ("skew_s", "recv_window_ms"),
    [(-2.0, 5000), (2.0, 1000)],
    ids=["client-2s-ahead", "client-2s-behind-recvwindow-1s"],
)
async def test_clock_skew_after_sync_is_healed_by_one_resync(
    fake_binance: FakeBinance,
    event_log: Callable[[BinanceClient], EventLog],
    skew_s: float,
    recv_window_ms: int,
) -> None:
    config = make_config(fake_binance, recv_window_ms=recv_window_ms)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        log = event_log(client)
        await client.get_account()  # synced while both clocks agree
        fake_binance.clock_skew_s = skew_s
        account = await client.get_account()
    assert "balances" in account
    rejected = [r for r in fake_binance.requests if r.key == ACCOUNT and r.status == 400]
    assert len(rejected) == 1  # one -1021, then the resynced retry passed
    assert fake_binance.requests[-1].key == ACCOUNT
    assert fake_binance.requests[-1].status == 200
    assert "time.resync" in log.kinds()


async def test_a_skewed_clock_at_start_is_measured_before_the_first_signed_call(
    fake_binance: FakeBinance,
) -> None:
    fake_binance.clock_skew_s = 3.0
    async with BinanceClient(
        config=make_config(fake_binance, recv_window_ms=1000), redis=no_redis()
    ) as client:
        await client.get_account()
    assert fake_binance.count(ACCOUNT, status=400) == 0


async def test_the_offset_comes_from_the_fastest_of_three_time_calls(
    fake_binance: FakeBinance,
) -> None:
    """The first ``time`` answer takes 2.4 s: its midpoint misplaces Binance's clock by 1.2 s,
    beyond a 1 s recvWindow. Only the two fast answers can sign a request Binance accepts."""
    config = make_config(fake_binance, recv_window_ms=1000, request_timeout=10)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        await client.call("GET /api/v3/ping")  # limits loaded: the next requests are the sync
        fake_binance.latency_s = 2.4

        async def only_the_first_is_slow() -> None:
            await fake_binance.wait_for_requests(1, key=TIME)  # its answer waits out 2.4 s
            fake_binance.latency_s = 0.0

        fast_again = asyncio.create_task(only_the_first_is_slow())
        await client.get_account()
        await fast_again
    assert fake_binance.count(TIME) == 3
    assert fake_binance.count(ACCOUNT) == 1
    assert fake_binance.count(ACCOUNT, status=400) == 0  # signed with the fast samples' offset


async def test_the_offset_is_measured_again_every_sync_interval(
    fake_binance: FakeBinance,
) -> None:
    interval_s = 2.0
    config = make_config(fake_binance, recv_window_ms=1000, time_sync_interval_s=interval_s)
    async with BinanceClient(config=config, redis=no_redis()) as client:
        await client.get_account()
        await client.get_account()
        assert fake_binance.count(TIME) == 3  # one sync of three calls for both
        await asyncio.sleep(interval_s)  # the interval is over
        fake_binance.clock_skew_s = 3.0  # Binance's clock now runs 3 s ahead of ours
        await client.get_account()
    assert fake_binance.count(TIME) == 6  # measured again before signing
    assert fake_binance.count(ACCOUNT) == 3
    assert fake_binance.count(ACCOUNT, status=400) == 0  # no -1021: the new offset was used


async def test_debug_logs_and_errors_of_signed_calls_carry_no_secret(
    fake_binance: FakeBinance, log_to: Callable[..., io.StringIO]
) -> None:
    stream = log_to(level="DEBUG", log_format="json")
    messages: list[str] = []
    async with BinanceClient(config=make_config(fake_binance), redis=no_redis()) as client:
        await client.get_account()
        await client.new_order("BTCUSDT", side="BUY", quantity=Decimal("0.001"))
        fake_binance.reset_next(1, key=ACCOUNT)
        await client.get_account()
    bad = make_config(fake_binance, secret_key="x" * 64)
    async with BinanceClient(config=bad, redis=no_redis()) as client:
        with pytest.raises(BinanceAuthError) as caught:
            await client.get_account()
        messages.append(str(caught.value))
        messages.append(repr(caught.value))
    output = stream.getvalue() + "\n".join(messages)
    assert "binance_request" in output  # debug lines were written
    assert SECRET not in output
    assert API_KEY not in output
    assert "signature=" not in output
    assert not re.search(r"\b[0-9a-f]{64}\b", output)  # no HMAC signature, in any form
    signed = [r for r in fake_binance.requests if r.signed]
    assert signed  # the calls above really were signed


async def test_ed25519_keys_sign_requests_binance_accepts(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file = tmp_path / "binance_ed25519.pem"
    key_file.write_bytes(private)
    async with FakeBinance(api_keys={"ed25519-key": public}) as fake:
        config = make_config(
            fake, api_key="ed25519-key", secret_key=None, private_key_path=key_file
        )
        async with BinanceClient(config=config, redis=no_redis()) as client:
            account = await client.get_account()
            order = await client.new_order("BTCUSDT", side="BUY", quantity="0.001")
    assert "balances" in account
    assert order.status == "FILLED"
    assert fake.count(status=400) == 0
