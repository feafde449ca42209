"""net.loop: nats-py is asyncio; stages are plain generators. They meet here.

    stage thread (main)                    loop thread (asyncio, a daemon)
    ───────────────────                    ──────────────────────────────
    send:  encode ── Handoff.put ────────> publisher task ──> NATS
    recv:  decode <── Inbox.get ───────── subscription / fetch task <── NATS
           call(coroutine) ──────────────> runs it, the result comes back

The stage thread never runs asyncio and the loop thread never blocks: hand-offs are
bounded both ways, so a slow side makes the other wait (Handoff(leaky=False)) or lose the
oldest item (leaky=True), counted, and never grows memory. Signals reach the stage thread
(Python delivers them to the main thread only), which then asks the loop to close.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from vflow_cli.console import log

T = TypeVar("T")
LEAKY_PATIENCE = 0.002  # a full leaky hand-off waits this long before it drops the oldest
WAIT_STEP = 0.25  # a blocked stage thread wakes this often (signals, a dead loop)


class Bridge:
    """An asyncio loop in a daemon thread, and blocking calls into it."""

    def __init__(self) -> None:
        # the stage thread holds the GIL for up to the switch interval (5 ms) whenever the
        # loop thread wakes: at 5 ms a hand-off, a burst of small packets would crawl
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(_quiet)
        self._thread = threading.Thread(target=self._run, name="vflow-nats", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run a coroutine in the loop and wait for its result (its exception is raised here)."""
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(
            coro,  # type: ignore[arg-type]
            self.loop,
        )
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # short waits: Ctrl-C and SIGTERM handlers run between them
            step = WAIT_STEP if deadline is None else min(WAIT_STEP, deadline - time.monotonic())
            try:
                return future.result(max(step, 0))
            except concurrent.futures.TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    future.cancel()
                    raise TimeoutError from None
            except BaseException:
                if not future.done():
                    future.cancel()
                raise

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) in the loop, without waiting."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        """Cancel what still runs in the loop (a connection cut short by Ctrl-C, say), give
        it a moment to unwind, then stop the loop: no task is destroyed while pending."""
        if self.loop.is_closed():
            return
        if self._thread.is_alive() and not self.in_loop():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_cancel_all(), self.loop).result(2)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # at interpreter exit
                self.loop.close()


async def _cancel_all() -> None:
    here = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not here]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=1)


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's own complaints (a task torn down at exit, a TLS transport closed late) are
    a debug line, never a traceback on stderr."""
    log.debug("asyncio: %s", context.get("message", context))


class Handoff(Generic[T]):
    """Items from the stage thread to the loop: bounded; full, put() waits or, leaky,
    drops the oldest item (counted in `dropped`)."""

    def __init__(self, bridge: Bridge, size: int, *, leaky: bool) -> None:
        self._bridge = bridge
        self._items: collections.deque[T] = collections.deque()
        self._size = size
        self._leaky = leaky
        self._cond = threading.Condition()
        self._ready = asyncio.Event()  # used in the loop only
        self.dropped = 0
        self.closed = False
        self.failed: BaseException | None = None  # the loop side died: put() raises it

    def put(self, item: T, *, waiting: Callable[[], None] | None = None) -> None:
        patient = False
        with self._cond:
            while len(self._items) >= self._size:
                if self.failed is not None:
                    raise self.failed
                if self._leaky:
                    if not patient:  # give the loop thread one chance to catch up first
                        patient = True
                        self._cond.wait(LEAKY_PATIENCE)
                        continue
                    self._items.popleft()
                    self.dropped += 1
                    break
                if waiting is not None:
                    waiting()  # e.g. tell people once that the stream is full
                self._cond.wait(WAIT_STEP)
            if self.failed is not None:
                raise self.failed
            self._items.append(item)
        self._bridge.soon(self._ready.set)

    def close(self) -> None:
        """No more items; the loop side gets None after the last one."""
        with self._cond:
            self.closed = True
        self._bridge.soon(self._ready.set)

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            self.failed = exc
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    async def get(self) -> T | None:
        """The next item (in the loop); None once closed and empty."""
        while True:
            with self._cond:
                if self._items:
                    item = self._items.popleft()
                    self._cond.notify_all()
                    return item
                if self.closed:
                    return None
            self._ready.clear()
            await self._ready.wait()


class Inbox(Generic[T]):
    """Items from the loop to the stage thread: put() never blocks the loop; full, it drops
    the oldest (leaky) or the caller must not put (it asks `room` first)."""

    def __init__(self, size: int, *, leaky: bool, budget: int = 0) -> None:
        self._items: collections.deque[tuple[T, int]] = collections.deque()
        self._cond = threading.Condition()
        self.size = size  # items at most
        self.budget = budget  # and bytes at most (0: no limit)
        self.held = 0
        self.leaky = leaky
        self.dropped = 0
        self._on_room: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def room(self) -> int:
        return self.size - len(self._items)

    def put(self, item: T, nbytes: int = 0) -> list[T]:
        """Add an item; returns the items it dropped to make room (leaky)."""
        dropped = []
        with self._cond:
            while (
                self.leaky
                and self._items
                and (
                    len(self._items) >= self.size
                    or (self.budget and self.held + nbytes > self.budget)
                )
            ):
                old, size = self._items.popleft()
                self.held -= size
                dropped.append(old)
                self.dropped += 1
            self._items.append((item, nbytes))
            self.held += nbytes
            self._cond.notify()
        return dropped

    def on_room(self, callback: Callable[[], None]) -> None:
        """callback() (from the stage thread) each time an item is taken."""
        self._on_room = callback

    def get(self, timeout: float | None) -> T | None:
        """The next item, or None after `timeout` seconds (None: wait WAIT_STEP at most)."""
        with self._cond:
            if not self._items:
                self._cond.wait(WAIT_STEP if timeout is None else min(timeout, WAIT_STEP))
            if not self._items:
                return None
            item, size = self._items.popleft()
            self.held -= size
        if self._on_room is not None:
            self._on_room()
        return item
