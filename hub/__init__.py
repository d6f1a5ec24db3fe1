"""The Pilothouse hub: the control plane that holds what should run where, and every event.

The public surface::

    from pilothouse.hub import Hub, HubSettings, serve_hub

    async with serve_hub(HubSettings.load(config_file)) as url:   # embedded
        ...
    await Hub(settings).serve()                                    # until request_stop()

``create_app`` gives the bare aiohttp application; everything else is reached
through these.
"""

from pilothouse.hub.api.app import create_app
from pilothouse.hub.errors import HubError
from pilothouse.hub.server import Hub, serve_hub
from pilothouse.hub.settings import HubSettings

__all__ = ["Hub", "HubError", "HubSettings", "create_app", "serve_hub"]
