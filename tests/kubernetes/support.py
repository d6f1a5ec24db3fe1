"""What the Kubernetes tests share: model packages, a plugin started on the cluster, its context."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilothouse.agent.errors import HubUnreachableError
from pilothouse.agent.plugin import DeploymentReport, FetchedPackage, PluginContext
from pilothouse.foundation.domain.desired import DeploymentSettings, DesiredDeployment
from pilothouse.foundation.domain.events import Event
from pilothouse.plugins.kubernetes import KubernetesPlugin
from tests.kubernetes.conftest import Cluster
from tests.modelpkg.factory import python_package
from tests.process.support import RULES, broken_at_load

PE = "pe-k8s"


def packages(tmp: Path) -> dict[str, Path]:
    """Two good packages, and one that loads no model."""
    return {
        "rules": RULES,
        "rules-2": python_package(tmp / "rules-2", name="iris-rules-2"),
        "broken": broken_at_load(tmp / "broken"),
    }


async def unreachable_hub(model_package_id: str) -> FetchedPackage:
    """A hub that does not answer."""
    raise HubUnreachableError(f"hub unreachable while fetching {model_package_id}")


def spec(
    deployment_id: str, package: str, generation: int = 1, **settings: Any
) -> DesiredDeployment:
    """A desired deployment."""
    return DesiredDeployment(
        id=deployment_id,
        model_package_id=package,
        generation=generation,
        settings=DeploymentSettings(**settings),
    )


@dataclass
class Started:
    """A started plugin and what it emitted and reported."""

    plugin: KubernetesPlugin
    ctx: PluginContext
    events: list[Event] = field(default_factory=list)
    reports: list[DeploymentReport] = field(default_factory=list)


@asynccontextmanager
async def started(cluster: Cluster, state: Path, **settings: Any) -> AsyncIterator[Started]:
    """The plugin, started as an agent would start it, unloaded at the end."""
    events: list[Event] = []
    reports: list[DeploymentReport] = []
    ctx = PluginContext(
        PE,
        cluster.settings(**settings),
        state,
        events.append,
        logging.getLogger("pilothouse.plugin.test"),
        fetch_package=unreachable_hub,
        reports=reports.append,
    )
    plugin = KubernetesPlugin()
    try:
        await plugin.start(ctx)
        yield Started(plugin, ctx, events, reports)
    finally:
        await plugin.stop()
        await ctx.stop_tasks()
