"""The hub's services, built once over one store and handed to the API."""

from __future__ import annotations

from dataclasses import dataclass

from hub.service.auth import Authenticator
from hub.service.blobs import BlobStore
from hub.service.deployments import Deployments
from hub.service.environments import Environments
from hub.service.events import Events
from hub.service.feed import ChangeFeed
from hub.service.packages import Packages
from hub.service.presence import Presence
from hub.settings import HubSettings
from hub.store.interface import Store
from hub.telemetry import HubMetrics


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a handler may call."""

    store: Store
    feed: ChangeFeed
    auth: Authenticator
    environments: Environments
    packages: Packages
    deployments: Deployments
    events: Events
    presence: Presence


def build(
    settings: HubSettings,
    store: Store,
    feed: ChangeFeed,
    blobs: BlobStore,
    admin_token: str,
    metrics: HubMetrics,
) -> Services:
    """Wire the services together."""
    return Services(
        store=store,
        feed=feed,
        auth=Authenticator(admin_token, store),
        environments=Environments(store),
        packages=Packages(store, blobs, settings.limits),
        deployments=Deployments(store),
        events=Events(store, metrics, settings.limits.max_event_batch),
        presence=Presence(store, settings.agents),
    )
