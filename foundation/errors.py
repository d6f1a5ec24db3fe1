"""The base of Pilothouse's error tree, shared by every part.

Every error raised on purpose derives from :class:`PilothouseError` and carries
enough context (which field, which task) to become a clear message and, in the
agent, an event. Each part extends the tree below these (the agent's plugin and
hub errors, the hub's HTTP errors, the prediction server's and model packages'),
and translates a lower layer's errors into it at the one boundary where they
enter. The command line maps the base classes to exit codes::

    PilothouseError ............ 1 when it ends a command
    ├── ConfigError ............ 2: a setting or config file is wrong (refused at start)
    └── CrashLoopError ......... 1: a supervised task failed too often; its owner gives up
"""

from __future__ import annotations


class PilothouseError(Exception):
    """Base of every error raised on purpose by Pilothouse."""


class ConfigError(PilothouseError):
    """A configuration value is invalid; ``problems`` lists each one."""

    def __init__(self, problems: list[str], *, source: str = "configuration") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid {source}:\n{lines}")


class CrashLoopError(PilothouseError):
    """A supervised task failed ``failures`` times within ``window_s`` seconds."""

    def __init__(self, task: str, failures: int, window_s: float, last: BaseException) -> None:
        self.task = task
        self.failures = failures
        self.window_s = window_s
        self.last = last
        super().__init__(
            f"task {task!r} failed {failures} times within {window_s:g}s, giving up; "
            f"last error: {type(last).__name__}: {last}"
        )
