"""The hub's services, built once over one store and handed to the API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from pilothouse.hub.clock import Clock
from pilothouse.hub.monitoring.ingest import Ingest
from pilothouse.hub.monitoring.retraining import Retraining
from pilothouse.hub.monitoring.statistics import Statistics
from pilothouse.hub.notifications import composing
from pilothouse.hub.notifications.management import Notifications
from pilothouse.hub.notifications.notifier import Dispatcher
from pilothouse.hub.notifications.sealing import Sealer
from pilothouse.hub.service.auth import Authenticator
from pilothouse.hub.service.blobs import BlobStore
from pilothouse.hub.service.deployments import Deployments
from pilothouse.hub.service.environments import Environments
from pilothouse.hub.service.events import Events
from pilothouse.hub.service.exporting import Exports
from pilothouse.hub.service.feed import ChangeFeed
from pilothouse.hub.service.management import ManagementSwitch
from pilothouse.hub.service.packages import Packages
from pilothouse.hub.service.presence import Presence
from pilothouse.hub.service.retention import EventRetention
from pilothouse.hub.service.tailing import EventTail
from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.interface import Store
from pilothouse.hub.telemetry import HubMetrics


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a handler may call, and the background work the app runs."""

    store: Store
    feed: ChangeFeed
    auth: Authenticator
    environments: Environments
    packages: Packages
    deployments: Deployments
    events: Events
    exports: Exports
    presence: Presence
    notifications: Notifications
    dispatcher: Dispatcher
    retention: EventRetention
    management: ManagementSwitch
    tail: EventTail
    """The live event streams; its feed is woken by the store's event commits."""
    ingest: Ingest
    """Statistics windows in, drift judged."""
    statistics: Statistics
    """The monitoring series and actuals."""
    retraining: Retraining
    """Retraining triggers (its sender and scheduler run in the background)."""


@dataclass(frozen=True, slots=True)
class Outside:
    """What the services reach beyond the store: HTTP, the clock, keys, a wake-up signal."""

    http: aiohttp.ClientSession
    clock: Clock
    sealer: Sealer
    admin_token: str
    events_stored: asyncio.Event
    """Set by the store when it commits events; the notification dispatcher waits on it."""
    user_agent: str


def build(
    settings: HubSettings,
    store: Store,
    feed: ChangeFeed,
    blobs: BlobStore,
    outside: Outside,
    metrics: HubMetrics,
    event_feed: ChangeFeed | None = None,
) -> Services:
    """Wire the services together (``event_feed``: published to when events are stored)."""
    hub_url = settings.public_url
    dispatcher = Dispatcher(
        store,
        outside.http,
        outside.sealer,
        outside.clock,
        settings.notifications,
        composing.Context(hub_url, settings.notifications.max_events_per_message),
        metrics,
        outside.events_stored,
        outside.user_agent,
    )
    retraining = Retraining(
        store,
        outside.http,
        outside.clock,
        settings.monitoring,
        hub_url,
        outside.user_agent,
    )
    return Services(
        store=store,
        feed=feed,
        auth=Authenticator(outside.admin_token, store),
        environments=Environments(store, feed),
        packages=Packages(store, blobs, settings.limits),
        deployments=Deployments(store),
        events=Events(store, metrics, settings.limits.max_event_batch, settings.events),
        exports=Exports(store, metrics),
        presence=Presence(store, settings.agents),
        notifications=Notifications(
            store,
            outside.sealer,
            dispatcher,
            outside.clock,
            hub_url,
            settings.notifications.allow_private_targets,
        ),
        dispatcher=dispatcher,
        retention=EventRetention(
            store, outside.clock, settings.retention, metrics, settings.monitoring
        ),
        management=ManagementSwitch(store),
        tail=EventTail(store, event_feed or ChangeFeed()),
        ingest=Ingest(store, settings.monitoring, settings.events, retraining),
        statistics=Statistics(store, settings.monitoring, retraining),
        retraining=retraining,
    )
