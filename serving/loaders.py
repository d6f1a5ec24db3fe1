"""Blocking model loads, each in a thread of its own, with a deadline.

Unpacking, loading and warming up a package is blocking work that runs
package code (pickles, ``python`` modules): it can hang — a model whose
``__init__`` waits on a lock, a file system that stops answering. A thread
cannot be killed, so a load is bounded the only way that holds: the caller
stops *waiting* for it. :meth:`Loader.run` waits at most ``deadline_s`` seconds,
then raises :class:`~pilothouse.serving.errors.LoadTimeoutError`; the deployment's lock is
released with it, so the next change of that deployment proceeds and the old
model keeps serving.

The abandoned thread is left to finish on its own. It is a daemon thread
(not a pool worker), so it can neither hold a pool slot that later loads need
nor keep the process from exiting; it stops counting against ``load_threads``
the moment it is abandoned; and whatever it eventually returns is handed to
``abandon`` (the registry closes the model), so a late load leaks nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from pilothouse.serving.errors import LoadTimeoutError

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class Loader(Generic[_T]):
    """Runs blocking loads, at most ``concurrency`` at once, each within a deadline."""

    def __init__(self, concurrency: int, abandon: Callable[[_T], None]) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._abandon = abandon

    def start(self, func: Callable[[], _T], name: str) -> asyncio.Future[_T]:
        """Start ``func`` in a daemon thread; the future resolves (on the loop) when it ends."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[_T] = loop.create_future()

        def settle(result: _T | None, error: BaseException | None) -> None:
            if done.cancelled():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)  # type: ignore[arg-type]  # None only with an error

        def body() -> None:
            result: _T | None = None
            error: BaseException | None = None
            try:
                result = func()
            except BaseException as exc:
                error = exc
            try:
                loop.call_soon_threadsafe(settle, result, error)
            except RuntimeError:  # the loop is closed (server stopped): nobody will collect it
                if error is None:
                    self._abandon(result)  # type: ignore[arg-type]  # None only with an error

        threading.Thread(target=body, name=name, daemon=True).start()
        return done

    async def run(
        self,
        func: Callable[[], _T],
        *,
        name: str,
        deadline_s: float,
        what: str,
        on_end: Callable[[], None] = lambda: None,
    ) -> _T:
        """``func()`` in a thread, or :class:`LoadTimeoutError` after ``deadline_s`` seconds.

        ``on_end`` is called on the loop when the thread ends, however late.
        """
        async with self._slots:
            job = self.start(func, name)
            job.add_done_callback(lambda _: on_end())
            try:
                async with asyncio.timeout(deadline_s):
                    return await asyncio.shield(job)
            except TimeoutError:
                raise LoadTimeoutError(
                    f"{what} did not finish within {deadline_s:g} s (load_timeout_s); abandoned"
                ) from None
            finally:
                if not job.done():
                    job.add_done_callback(self._late)

    def _late(self, job: asyncio.Future[_T]) -> None:
        """A load finished after its caller stopped waiting: release what it made."""
        if job.cancelled() or job.exception() is not None:
            return
        log.warning("an abandoned load finished late; releasing what it loaded")
        self._abandon(job.result())
