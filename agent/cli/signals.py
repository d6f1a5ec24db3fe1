"""The one place the command line turns SIGTERM/SIGINT into a clean stop.

Only foreground commands install signal handlers; everything they run
(agent, hub, prediction server) has a ``request_stop``/``stop`` of its own
and never touches signals, so it can be embedded anywhere.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def until_signalled(main: Awaitable[T], stop: Callable[[], None]) -> T:
    """Await ``main``; a SIGTERM or SIGINT meanwhile calls ``stop`` (which must end it)."""
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop)
    try:
        return await main
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)


def print_reference(rows: list[tuple[str, str, str]], env: Callable[[str], str]) -> int:
    """Print settings rows (name, default, meaning) as the README's Markdown table."""
    print("| setting | environment variable | default | meaning |")
    print("|---|---|---|---|")
    for name, default, doc in rows:
        print(f"| `{name}` | `{env(name)}` | `{default}` | {doc} |")
    return 0
