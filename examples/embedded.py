"""Embedding the agent in your own asyncio program.

Run it: ``.venv/bin/python examples/embedded.py``. It starts an agent with the
simulated ``test`` plugin, sets the desired state from code (no file), waits
until both deployments are ready, replaces one model, and stops cleanly.
The agent installs no signal handlers; your program decides when it stops.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from pilothouse.agent import Agent, AgentSettings, DesiredDeployment, DesiredState


def desired(fraud_model: str) -> DesiredState:
    """The state we want: two deployments."""
    return DesiredState(
        deployments=(
            DesiredDeployment(id="fraud", name="Fraud detector", model_package_id=fraud_model),
            DesiredDeployment(id="churn", name="Churn", model_package_id="churn-v1"),
        )
    )


async def main() -> None:
    """Serve an agent in a task, drive it, stop it."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = AgentSettings.load(
            None,
            {
                "prediction_environment": "embedded",
                "plugin": "test",
                "plugin_settings": {"delays": {"launch_s": 0.2, "replace_model_s": 0.1}},
                "state_dir": Path(tmp),
            },
        )
        agent = Agent(settings)
        serving = asyncio.create_task(agent.serve(), name="pilothouse agent")
        await agent.wait_ready()

        agent.apply(desired("fraud-v1"))
        await agent.wait_settled()
        print("launched:", _states(agent))

        agent.apply(desired("fraud-v2"))
        await agent.wait_settled()
        print("replaced:", _states(agent))

        agent.request_stop()
        await serving
        print("events written:", len(settings.event_log_path.read_text().splitlines()))


def _states(agent: Agent) -> dict[str, str]:
    assert agent.dispatcher is not None
    return {
        dep_id: f"{rec.state.value} on {rec.model_package_id}"
        for dep_id, rec in sorted(agent.dispatcher.records.items())
    }


if __name__ == "__main__":
    asyncio.run(main())
