"""Benchmarks of ``BinanceClient`` against a floor (bare aiohttp + orjson) and peers
(python-binance, CCXT), all against the fake exchange of ``tests/fakes``.

Run with ``make bench`` or ``python -m bench [--quick]``; see ``bench/README.md``. Not part of
``make test``: nothing here asserts a timing, targets are ratios printed as met or MISSED.
"""
