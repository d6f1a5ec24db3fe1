"""One attempt at delivering a message over HTTP, and what its outcome means for retrying.

The request is a POST of the stored body with ``Content-Type:
application/json``, ``X-Pilothouse-Delivery`` (the delivery id: the same on
every retry, so a receiver can drop duplicates — delivery is at least once)
and ``X-Pilothouse-Kind``; a webhook channel with a secret adds
``X-Pilothouse-Signature`` (:mod:`pilothouse.hub.notifications.signing`), stamped with the wall
clock when the attempt starts. Redirects are not followed.

Outcomes: a 2xx answer is delivered. A connection failure, a timeout, 408,
425, 429 or any 5xx may succeed later: *retry* (a ``Retry-After`` in seconds
is honoured by the backoff). Any other answer will not get better by itself
(Slack's 400 ``invalid_payload``, 403, 404 ``no_service``, 410): *failed*.
Error texts never carry the channel's URL, which is a secret, nor what the
receiver answered beyond its status code and reason: an admin reading the
delivery log must not be able to read an internal service through it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from pilothouse.hub.notifications import signing

_RETRYABLE = frozenset({408, 425, 429})
_REASON_CHARS = 100


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt went."""

    delivered: bool
    retryable: bool
    http_status: int | None
    error: str
    duration_ms: float
    retry_after_s: float | None = None


def headers(
    delivery_id: str, kind: str, secret: str | None, body: bytes, user_agent: str
) -> dict[str, str]:
    """The request headers of one attempt (signed now when there is a secret)."""
    out = {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "X-Pilothouse-Delivery": delivery_id,
        "X-Pilothouse-Kind": kind,
    }
    if secret is not None:
        out[signing.HEADER] = signing.signature(secret, body, int(time.time()))
    return out


async def attempt(
    http: aiohttp.ClientSession,
    url: str,
    body: bytes,
    request_headers: Mapping[str, str],
    timeout_s: float,
    shown_url: str,
) -> Outcome:
    """POST ``body`` to ``url`` once; never raises for what the network or receiver does."""
    began = time.perf_counter()
    try:
        async with http.post(
            url,
            data=body,
            headers=dict(request_headers),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as resp:
            return _answered(resp, _elapsed(began))
    except TimeoutError:
        return Outcome(False, True, None, f"no answer within {timeout_s:g}s", _elapsed(began))
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}".replace(url, shown_url)
        return Outcome(False, True, None, error, _elapsed(began))


def _answered(resp: aiohttp.ClientResponse, duration_ms: float) -> Outcome:
    status = resp.status
    if 200 <= status < 300:
        return Outcome(True, False, status, "", duration_ms)
    reason = " ".join((resp.reason or "").split())[:_REASON_CHARS]
    error = f"the receiver answered {status}" + (f" {reason}" if reason else "")
    retryable = status >= 500 or status in _RETRYABLE
    return Outcome(False, retryable, status, error, duration_ms, _retry_after(resp))


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from webhook receivers; the backoff decides


def _elapsed(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 3)
