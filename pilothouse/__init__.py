"""Pilothouse: deploy, replace, stop and watch machine-learning models on any infrastructure.

One import name holds every part, side by side on one foundation::

    pilothouse.foundation   vocabulary, error tree, layered settings, logging, asyncio kit
    pilothouse.modelpkg     model packages: manifest, safe archives, loaders
    pilothouse.serving      the multi-model prediction server   (python -m pilothouse.serving)
    pilothouse.agent        the agent and its plugin interface  (python -m pilothouse.agent)
    pilothouse.hub          the control plane                   (python -m pilothouse.hub)
    pilothouse.plugins      the built-in plugins and the prediction-server fleet kit
    pilothouse.cli          the ``pilothouse`` command and ``pilothouse up``

Embedding the agent: ``await pilothouse.agent.Agent(settings).serve()``.
"""

__version__ = "0.1.0"
