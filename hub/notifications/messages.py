"""What a notification says, and how it is written for each kind of channel.

Every message is first a :class:`~pilothouse.hub.api.schemas.WebhookMessage` — kind,
status, summary, PE, deployment (with a link into the hub), the events — and
is then rendered:

* ``webhook``: that model as JSON, exactly (the schema is in the OpenAPI
  document under ``webhooks``);
* ``slack``: an incoming-webhook payload. Block Kit has no colour of its own,
  so the blocks sit in an attachment whose ``color`` is the status colour (the
  convention Slack keeps for this); ``text`` is the notification fallback.
  Text is escaped for Slack's mrkdwn (``&``, ``<``, ``>``) and cut to Slack's
  limits; times use ``<!date^…>`` so each reader sees their own time zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub.api.schemas import ChannelType, DeliveryKind, EventOut, WebhookMessage

DEPLOYMENT_PATH = "/api/v1/deployments/{id}"
"""Where a message links a deployment to, under the hub's URL."""

COLOURS = {
    Status.PASSING: "#2EB67D",
    Status.AT_RISK: "#ECB22E",
    Status.FAILING: "#E01E5A",
    Status.UNKNOWN: "#9E9E9E",
    Status.INFORMATIONAL: "#1D9BD1",
}
_SIGNS = {
    Status.PASSING: ":large_green_circle:",
    Status.AT_RISK: ":large_yellow_circle:",
    Status.FAILING: ":red_circle:",
    Status.UNKNOWN: ":white_circle:",
    Status.INFORMATIONAL: ":large_blue_circle:",
}
_SLACK_EVENTS = 5
_SLACK_TEXT = 2900
_EVENT_TEXT = 500


def deployment_link(hub_url: str, deployment_id: str | None) -> str | None:
    """The link to a deployment in the hub."""
    if deployment_id is None:
        return None
    return hub_url.rstrip("/") + DEPLOYMENT_PATH.format(id=deployment_id)


def summary(kind: DeliveryKind, status: Status, subject: str, latest: EventOut | None) -> str:
    """One line saying what happened, for people."""
    said = f": {latest.message}" if latest is not None and latest.message else ""
    if kind == "resolved":
        return f"{subject} is passing again"
    if kind == "repeat":
        return f"{subject} is still {_word(status)}{said}"
    if kind == "firing":
        return f"{subject} is {_word(status)}{said}"
    if kind == "test":
        return "Test message from Pilothouse: this channel works"
    return f"{subject}{said}"


def subject(message: WebhookMessage) -> str:
    """What the message is about: the deployment's name, else its id, else the PE."""
    if message.deployment_id is not None:
        return message.deployment_name or message.deployment_id
    name = message.prediction_environment_name or message.prediction_environment_id
    return f"prediction environment {name}" if name else "Pilothouse"


def render(channel_type: ChannelType, message: WebhookMessage) -> bytes:
    """The request body for a channel of ``channel_type``."""
    if channel_type == "slack":
        return orjson.dumps(slack(message))
    return message.model_dump_json().encode()


def slack(message: WebhookMessage) -> dict[str, Any]:
    """The Slack incoming-webhook payload of ``message``."""
    link = message.deployment_url
    about = _escape(subject(message))
    headline = f"{_SIGNS[message.status]} *{_linked(about, link)}* — {_escape(message.summary)}"
    blocks: list[dict[str, Any]] = [
        _section(_cut(headline)),
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*Deployment*\n{_linked(_escape(message.deployment_id or '-'), link)}"),
                _mrkdwn(f"*Prediction environment*\n{_escape(_environment(message))}"),
                _mrkdwn(f"*Status*\n{_word(message.status)}"),
                _mrkdwn(f"*Time*\n{_time(_latest_time(message))}"),
            ],
        },
    ]
    shown = message.events[-_SLACK_EVENTS:]
    if shown:
        lines = [_event_line(event) for event in shown]
        more = len(message.events) - len(shown) + message.omitted_events
        if more:
            lines.append(f"_… and {more} more_")
        blocks.append(_section(_cut("\n".join(lines))))
    blocks.append({"type": "context", "elements": [_mrkdwn(_cut(_context(message)))]})
    if link is not None:
        button = {"type": "plain_text", "text": "Open in the hub"}
        blocks.append(
            {"type": "actions", "elements": [{"type": "button", "text": button, "url": link}]}
        )
    fallback = f"{_word(message.status).upper()}: {subject(message)} — {message.summary}"
    return {
        "text": _cut(fallback),
        "attachments": [
            {"color": COLOURS[message.status], "fallback": _cut(fallback), "blocks": blocks}
        ],
    }


def _context(message: WebhookMessage) -> str:
    count = len(message.events) + message.omitted_events
    parts = [f"{count} event{'s' if count != 1 else ''}", message.kind]
    if message.policy is not None:
        parts.append(f"policy *{_escape(message.policy.get('name', ''))}*")
    return " · ".join(parts)


def _event_line(event: EventOut) -> str:
    text = _escape(event.message)[:_EVENT_TEXT]
    return f"`{event.type}` {_word(event.status)} {_time(event.time)} — {text}"


def _environment(message: WebhookMessage) -> str:
    name, ident = message.prediction_environment_name, message.prediction_environment_id
    if name and ident and name != ident:
        return f"{name} ({ident})"
    return name or ident or "-"


def _latest_time(message: WebhookMessage) -> datetime:
    return message.events[-1].time if message.events else message.created_at


def _time(moment: datetime) -> str:
    shown = moment.isoformat().replace("+00:00", "Z")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time_secs}}|{shown}>"


def _word(status: Status) -> str:
    return status.value.replace("_", " ")


def _linked(text: str, url: str | None) -> str:
    return f"<{url}|{text}>" if url else text


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int = _SLACK_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
