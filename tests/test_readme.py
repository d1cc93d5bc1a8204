"""The README's client example runs as written, in its own process, against the fake
exchange: only the environment points it there; and its layout section names every module."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from tests.fakes.fake_binance import FakeBinance

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    return next(b for b in blocks if "BinanceClient(" in b)


async def test_readme_client_example_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    async with FakeBinance(api_keys={"your_api_key": "your_secret_key"}) as fake:
        env = {
            **os.environ,
            "BINANCE_BASE_URL": fake.url,
            "BINANCE_FUTURES_BASE_URL": fake.url,
            "REDIS_URL": "",
            "PYTHONPATH": str(ROOT),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()[-2000:]
    lines = out.decode().splitlines()
    assert lines[0].startswith("BTC Price: ")
    assert any(line.startswith("USDT ") for line in lines)  # a non-zero balance printed
    assert fake.orders_placed == 1
    assert int(lines[-1]) >= 4  # get_metrics()["http"]["total_requests"]


def test_layout_section_names_every_module() -> None:
    """A newcomer finds every module of the product in the README's layout section."""
    text = (ROOT / "README.md").read_text()
    layout = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    modules = [
        path
        for package in ("utils", "handler", "bot", "analysis")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "__init__.py"
    ]
    assert modules
    unnamed = [str(p.relative_to(ROOT)) for p in modules if f"`{p.name}`" not in layout]
    assert unnamed == []
