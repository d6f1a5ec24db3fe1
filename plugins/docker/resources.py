"""CPU and memory quantities, written the Kubernetes way, as the engine counts them.

A deployment's ``settings.resources`` (``cpu: "500m"``, ``memory: "512Mi"``) is
the same whatever the plugin; the engine wants ``NanoCpus`` and bytes.
"""

from __future__ import annotations

import re

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T|k)?$")
_UNITS = {
    None: 1, "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
}  # fmt: skip
MIN_MEMORY_BYTES = 6 * 1024**2
"""The engine refuses less."""


def nano_cpus(quantity: str) -> int:
    """``500m`` → 500_000_000; ``2`` → 2_000_000_000; ValueError saying what was expected."""
    match = _CPU.match(quantity.strip())
    if match is None:
        raise ValueError(f"{quantity!r} is not a CPU quantity (expected e.g. '500m', '1', '2.5')")
    value = float(match[1]) / (1000 if match[2] else 1)
    if value <= 0:
        raise ValueError(f"{quantity!r}: a CPU limit must be more than 0")
    return round(value * 1e9)


def memory_bytes(quantity: str) -> int:
    """``512Mi`` → 536_870_912; ``1G`` → 10**9; ValueError saying what was expected."""
    match = _MEMORY.match(quantity.strip())
    if match is None:
        raise ValueError(
            f"{quantity!r} is not a memory quantity (expected e.g. '512Mi', '1Gi', '800M')"
        )
    value = round(float(match[1]) * _UNITS[match[2]])
    if value < MIN_MEMORY_BYTES:
        raise ValueError(f"{quantity!r}: a memory limit must be at least 6Mi")
    return value
