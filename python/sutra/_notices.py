# SPDX-License-Identifier: MIT
"""Epoch notices: an iterator, a file descriptor and async iteration."""

import asyncio
import collections
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Notice:
    """One notice of the coordinator (docs/PROTOCOL.md section 9).

    epoch: the newest published epoch it announces; durable_epoch; heartbeat:
    True for the periodic heartbeat (no changes listed); ordinals: what the
    epoch touched; ids: the ids of those ordinals this process could name
    (learnt, updated, and deleted ones it had seen before); unresolved: the
    ordinals it could not name (a concept deleted before this process ever
    saw it). Notices are hints: some are lost (compare epochs, and treat
    every concept as possibly changed when one was skipped)."""
    epoch: int
    published_end: int
    durable_epoch: int
    heartbeat: bool
    ordinals: tuple = field(default=())
    ids: tuple = field(default=())
    unresolved: tuple = field(default=())


class Notices:
    """A subscription to a store's notices (its own reader, subscribed to
    the coordinator's events URL). Iterate it (blocking), call next(timeout),
    register fileno() with an event loop, or use `async for`.

    Changed ordinals are named through a cache of ordinal -> id, filled by
    scanning a snapshot for the ordinals not yet known (new concepts are
    found first, so the scan stops early); the cache grows with the
    concepts this subscription has seen changed."""

    def __init__(self, store, resolve_ids=True):
        self._store = store
        self._n = store._open_notices()
        self._resolve = resolve_ids
        self._cache = {}
        self._pending = collections.deque()

    def wait_connected(self, timeout=5.0):
        """Waits until the subscription hears the coordinator (its first
        notice: a heartbeat comes every --check-interval-ms, 1 s by
        default). nng delivers only what is published after the connection
        is made, so call this before relying on the notice of a write made
        right after subscribing. Returns False after timeout seconds (the
        coordinator is not running, or sends no heartbeats)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            raw = self._n._next(int(min(left, 0.2) * 1000) or 1)
            if raw is not None:
                if not raw[3]:  # an epoch notice: keep it for next()
                    self._pending.append(raw)
                return True

    def fileno(self):
        """A descriptor that is readable while a notice waits (notices kept
        by wait_connected() are returned by next() without it)."""
        return self._n.fileno()

    def _make(self, raw):
        epoch, end, durable, heartbeat, ords = raw
        ids = ()
        unresolved = ()
        if self._resolve and ords:
            missing = [o for o in ords if o not in self._cache]
            if missing:
                with self._store.snapshot() as s:
                    self._cache.update(s._resolve(missing))
            ids = tuple(self._cache[o] for o in ords if o in self._cache)
            unresolved = tuple(o for o in ords if o not in self._cache)
        return Notice(epoch, end, durable, bool(heartbeat), tuple(ords), ids, unresolved)

    def next(self, timeout=None, heartbeats=False):
        """The next notice, or None when timeout (seconds; None: no limit)
        passes first. Heartbeats are skipped unless heartbeats=True."""
        left = None if timeout is None else max(0.0, timeout)
        while True:
            # Slices, so that Ctrl-C interrupts a long wait.
            ms = 200 if left is None or left > 0.2 else int(left * 1000)
            raw = self._pending.popleft() if self._pending else self._n._next(ms)
            if raw is not None:
                n = self._make(raw)
                if n.heartbeat and not heartbeats:
                    continue
                return n
            if left is not None:
                left -= ms / 1000
                if left <= 0:
                    return None

    def __iter__(self):
        return self

    def __next__(self):
        return self.next(None)

    def __aiter__(self):
        return self

    async def __anext__(self):
        loop = asyncio.get_running_loop()
        while True:
            n = self.next(0)
            if n is not None:
                return n
            fut = loop.create_future()
            fd = self.fileno()

            def ready():
                if not fut.done():
                    fut.set_result(None)

            loop.add_reader(fd, ready)
            try:
                await fut
            finally:
                loop.remove_reader(fd)

    def close(self):
        self._n.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False
