"""Notification channels, policies and the delivery log, as the API manages them.

A channel's URL and secret are sealed (:mod:`pilothouse.hub.notifications.sealing`) before they
are stored and never shown again: the API shows the URL masked and
``has_secret``. A webhook channel without a secret gets a generated one, shown
in the creation answer only (like an agent token). Slack signs nothing: a Slack
channel takes no secret. ``test`` sends one message to a channel at once —
one attempt, no retries — and answers with its delivery record, so a wrong
URL shows right away. A URL aimed into the hub's own network is refused
unless allowed (:mod:`pilothouse.hub.service.targets`).
"""

from __future__ import annotations

from typing import Any

from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub import clock
from pilothouse.hub.api.schemas import (
    DeliveryQuery,
    NotificationChannel,
    NotificationChannelCreate,
    NotificationChannelCreated,
    NotificationChannelUpdate,
    NotificationDelivery,
    NotificationPolicy,
    NotificationPolicyCreate,
    NotificationPolicyUpdate,
    Page,
    WebhookMessage,
)
from pilothouse.hub.clock import Clock
from pilothouse.hub.errors import Conflict, FieldProblem, InvalidInput
from pilothouse.hub.notifications import messages, sealing
from pilothouse.hub.notifications.notifier import Dispatcher
from pilothouse.hub.notifications.sealing import Sealer
from pilothouse.hub.service import cursors, targets
from pilothouse.hub.service.naming import new_id
from pilothouse.hub.store.interface import Store
from pilothouse.hub.store.records import (
    ChannelRecord,
    Cursor,
    DeliveryFilter,
    DeliveryJob,
    NewDelivery,
    PageQuery,
)


class Notifications:
    """Create, change and delete channels and policies; test channels; read the delivery log."""

    def __init__(
        self,
        store: Store,
        sealer: Sealer,
        dispatcher: Dispatcher,
        clock: Clock,
        hub_url: str,
        allow_private_targets: bool,
    ) -> None:
        self._allow_private = allow_private_targets
        self._store = store
        self._sealer = sealer
        self._dispatcher = dispatcher
        self._clock = clock
        self._hub_url = hub_url

    # --- channels ---------------------------------------------------------------

    async def create_channel(self, body: NotificationChannelCreate) -> NotificationChannelCreated:
        """Store a channel; a webhook channel without a secret gets one (in this answer only)."""
        secret = None if body.secret is None else body.secret.get_secret_value()
        generated = None
        targets.check(body.url, self._allow_private)
        if body.type == "slack" and secret is not None:
            raise InvalidInput.field(
                "secret", "a Slack channel takes no secret (Slack signs nothing)"
            )
        if body.type == "webhook" and secret is None:
            secret = generated = sealing.new_secret()
        now = clock.from_us(self._clock.now_us())
        channel = NotificationChannel(
            id=new_id("nch"),
            name=body.name,
            type=body.type,
            url=sealing.masked(body.url),
            has_secret=secret is not None,
            created_at=now,
            updated_at=now,
        )
        sealed_secret = None if secret is None else self._sealer.seal(secret)
        await self._store.add_channel(
            ChannelRecord(channel, self._sealer.seal(body.url), sealed_secret)
        )
        return NotificationChannelCreated(**channel.model_dump(), secret=generated)

    async def get_channel(self, channel_id: str) -> NotificationChannel:
        """One channel (URL masked, no secret)."""
        return (await self._store.get_channel(channel_id)).channel

    async def page_channels(self, limit: int, cursor: str | None) -> Page[NotificationChannel]:
        """A page of channels, newest first."""
        query = PageQuery(limit + 1, cursors.decode(cursor))
        found = await self._store.list_channels(query)
        items, after = cursors.split(found, limit, _created_key)
        return Page[NotificationChannel](items=items, next_cursor=after)

    async def update_channel(
        self, channel_id: str, body: NotificationChannelUpdate
    ) -> NotificationChannel:
        """Change a channel's name, URL or secret."""
        url = body.url
        if url is not None:
            targets.check(url, self._allow_private)
        secret = None if body.secret is None else body.secret.get_secret_value()
        url_sealed = None if url is None else self._sealer.seal(url)
        secret_sealed = None if secret is None else self._sealer.seal(secret)
        now = clock.from_us(self._clock.now_us())

        def change(record: ChannelRecord) -> ChannelRecord:
            if secret is not None and record.channel.type == "slack":
                raise Conflict(  # valid alone; wrong for the channel stored
                    "secret: a Slack channel takes no secret (Slack signs nothing)",
                    [FieldProblem("secret", "a Slack channel takes no secret")],
                )
            update: dict[str, Any] = {"updated_at": now}
            if body.name is not None:
                update["name"] = body.name
            if url is not None:
                update["url"] = sealing.masked(url)
            if secret_sealed is not None:
                update["has_secret"] = True
            return ChannelRecord(
                record.channel.model_copy(update=update),
                url_sealed or record.url_sealed,
                secret_sealed or record.secret_sealed,
            )

        return (await self._store.update_channel(channel_id, change)).channel

    async def delete_channel(self, channel_id: str) -> None:
        """Delete a channel no policy sends to."""
        await self._store.delete_channel(channel_id)

    async def test_channel(self, channel_id: str) -> NotificationDelivery:
        """Send a test message now (one attempt) and answer with its delivery record."""
        record = await self._store.get_channel(channel_id)
        now_us = self._clock.now_us()
        message = _test_message(new_id("dlv"), now_us, self._hub_url)
        body = messages.render(record.channel.type, message)
        job = DeliveryJob(
            id=message.id,
            channel_id=channel_id,
            channel_type=record.channel.type,
            url_sealed=record.url_sealed,
            secret_sealed=record.secret_sealed,
            body=body,
            kind="test",
            attempts=0,
            max_attempts=1,
        )
        attempt = await self._dispatcher.attempt(job)
        new = NewDelivery(
            id=message.id,
            channel_id=channel_id,
            policy_id=None,
            kind="test",
            status=Status.INFORMATIONAL,
            prediction_environment_id=None,
            deployment_id=None,
            event_ids=[],
            body=body,
            created_us=now_us,
            max_attempts=1,
        )
        await self._store.add_delivery(new, attempt)
        return await self._store.get_delivery(message.id)

    # --- policies ---------------------------------------------------------------

    async def create_policy(self, body: NotificationPolicyCreate) -> NotificationPolicy:
        """Store a policy; ``NotFound`` naming ``channel_id`` if the channel is unknown."""
        now = clock.from_us(self._clock.now_us())
        policy = NotificationPolicy(
            id=new_id("npo"), **body.model_dump(), created_at=now, updated_at=now
        )
        await self._store.add_policy(policy)
        self._dispatcher.poke()
        return policy

    async def get_policy(self, policy_id: str) -> NotificationPolicy:
        """One policy."""
        return await self._store.get_policy(policy_id)

    async def page_policies(self, limit: int, cursor: str | None) -> Page[NotificationPolicy]:
        """A page of policies, newest first."""
        query = PageQuery(limit + 1, cursors.decode(cursor))
        found = await self._store.list_policies(query)
        items, after = cursors.split(found, limit, _created_key)
        return Page[NotificationPolicy](items=items, next_cursor=after)

    async def update_policy(
        self, policy_id: str, body: NotificationPolicyUpdate
    ) -> NotificationPolicy:
        """Change a policy; disabling it forgets what it was waiting to send."""
        update = body.model_dump(exclude_none=True)
        update["updated_at"] = clock.from_us(self._clock.now_us())

        def change(policy: NotificationPolicy) -> NotificationPolicy:
            return NotificationPolicy.model_validate(policy.model_dump() | update)

        changed = await self._store.update_policy(policy_id, change)
        self._dispatcher.poke()
        return changed

    async def delete_policy(self, policy_id: str) -> None:
        """Delete a policy and what it was waiting to send (its deliveries stay in the log)."""
        await self._store.delete_policy(policy_id)

    # --- deliveries -------------------------------------------------------------

    async def get_delivery(self, delivery_id: str) -> NotificationDelivery:
        """One delivery with every attempt."""
        return await self._store.get_delivery(delivery_id)

    async def page_deliveries(self, query: DeliveryQuery) -> Page[NotificationDelivery]:
        """A page of deliveries, newest first."""
        found = await self._store.list_deliveries(
            DeliveryFilter(
                limit=query.limit + 1,
                channel_id=query.channel_id,
                policy_id=query.policy_id,
                deployment_id=query.deployment_id,
                state=query.state,
                kind=query.kind,
                after=cursors.decode(query.cursor),
            )
        )
        items, after = cursors.split(found, query.limit, _created_key)
        return Page[NotificationDelivery](items=items, next_cursor=after)


def _test_message(delivery_id: str, now_us: int, hub_url: str) -> WebhookMessage:
    return WebhookMessage(
        id=delivery_id,
        kind="test",
        status=Status.INFORMATIONAL,
        summary=messages.summary("test", Status.INFORMATIONAL, "Pilothouse", None),
        policy=None,
        prediction_environment_id=None,
        prediction_environment_name=None,
        deployment_id=None,
        deployment_name=None,
        deployment_url=hub_url,
        events=[],
        omitted_events=0,
        created_at=clock.from_us(now_us),
    )


def _created_key(item: NotificationChannel | NotificationPolicy | NotificationDelivery) -> Cursor:
    return Cursor(clock.to_us(item.created_at), item.id)
