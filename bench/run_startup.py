"""One client's start-up and memory, in a fresh process; prints one JSON line on stdout.

``python -m bench.run_startup CLIENT --url URL --calls N --tasks T``: imports the client's
modules (timed: ``import_s``), opens it and makes one ticker/price call (the epoch moment of
the answer is ``first_answer_at``; the parent subtracts the moment it spawned this process),
then makes ``N`` more calls over ``T`` tasks and reports the peak RSS of this process.

Peak RSS is ``VmHWM`` from ``/proc/self/status``: ``getrusage().ru_maxrss`` would not do, as
Linux carries the parent's high-water mark over ``fork``/``vfork`` and ``exec`` into it (a
child of the bench process would report the bench's own peak). ``ru_maxrss`` is the fallback
where ``/proc`` is missing. Only the standard library is imported before the timed imports,
so no client finds its dependencies already loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import resource
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("main",)

_KIB = 1024


async def _run(args: argparse.Namespace, modules: Sequence[str]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError as e:
        return {"error": f"not installed: {e.name or e}"}
    import_s = time.perf_counter() - started
    from bench.clients import open_client  # noqa: PLC0415 - after the timed imports
    from bench.run_client import fire  # noqa: PLC0415

    async with open_client(args.client, args.url, rate_limit=False) as call:
        await call()
        first_answer_at = time.time()
        failures = await fire(call, args.calls, args.tasks)
    return {
        "import_s": import_s,
        "first_answer_at": first_answer_at,
        "peak_rss_bytes": _peak_rss_bytes(),
        "failures": dict(failures),
    }


def _peak_rss_bytes() -> int:
    """This process's peak resident set size (see the module's docstring)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * _KIB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _KIB  # KiB on Linux


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args(argv)
    # bench.clients imports only the standard library at its top; the clients come later.
    from bench.clients import IMPORTS  # noqa: PLC0415

    result = asyncio.run(_run(args, IMPORTS[args.client]))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
