"""The container image's ``HEALTHCHECK``: whether the process in the container answers.

One image runs the hub, an agent or a prediction server, and which one is only known when
the container starts. So the check asks each process's own readiness endpoint, on the port
its environment variable names (the image's defaults otherwise), and passes as soon as one
answers 200: ``serve`` has ``/v2/health/ready``, ``hub run`` ``/readyz``, ``agent run``
``/healthz`` (the image turns the agent's local endpoint on). A process started with a
``--port`` flag instead of the environment variable sets ``PILOTHOUSE_HEALTHCHECK_URL``.

Standard library only, no ``curl`` in the image; exit 0 healthy, 1 not (Docker's contract).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

PROBES = (
    ("PILOTHOUSE_SERVE_PORT", "8702", "/v2/health/ready"),
    ("PILOTHOUSE_HUB_LISTEN__PORT", "8700", "/readyz"),
    ("PILOTHOUSE_HTTP__PORT", "8701", "/healthz"),
)
"""Per process: the variable holding its port, the image's default port, the probe path."""

TIMEOUT_S = 1.5
"""Per URL: three probes stay within the HEALTHCHECK's 5 s timeout."""


def urls(environ: dict[str, str]) -> list[str]:
    """The probe URLs to try, in order: the explicit one alone when it is set."""
    explicit = environ.get("PILOTHOUSE_HEALTHCHECK_URL")
    if explicit:
        return [explicit]
    return [
        f"http://127.0.0.1:{environ.get(var) or default}{path}" for var, default, path in PROBES
    ]


def answers(url: str) -> str | None:
    """``None`` when ``url`` answers 200; otherwise why not."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"{url}: HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url}: HTTP {status}"


def main() -> int:
    """Exit 0 when one probe answers; otherwise print every failure (kept by Docker) and exit 1."""
    failures = []
    for url in urls(dict(os.environ)):
        failure = answers(url)
        if failure is None:
            print(f"healthy: {url}")
            return 0
        failures.append(failure)
    print("unhealthy: " + "; ".join(failures), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
