"""Rate limits of the data service: a token bucket per key and one per anonymous client, in-process.

* A caller with a live key draws on its key's bucket, named by the key's digest (never the key):
  ``CITYLAKE_SERVICE_RATE_PER_MINUTE`` requests a minute, 600 by default.
* Everyone else — no key, a malformed header, or a key the service does not know — draws on the
  bucket of the client's IP address: ``CITYLAKE_SERVICE_ANON_RATE_PER_MINUTE``, 60 by default. So
  trying keys is limited like any other public use.

A bucket holds a minute's worth of requests and refills continuously, so a caller may burst up to
its limit and then goes on at the limit's pace. Over it the answer is 429 with ``{"error": …}`` and
a ``Retry-After`` header (whole seconds until one request is allowed again). Every HTTP request
counts, the OpenAPI pages included. The buckets live in the process: each replica of the service
counts on its own, and a restart forgets them.

Behind a reverse proxy every request comes from the proxy's address: uvicorn takes the client's
address from ``X-Forwarded-For`` only when the proxy is in its ``FORWARDED_ALLOW_IPS``
(127.0.0.1 by default), so set that to the proxy's address.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from citylake.stages.share import key_digest

MAX_BUCKETS = 100_000  # past this many, idle (full again) buckets are forgotten
LIVE_SECONDS = 60.0  # a key found live is taken as live this long before it is looked up again


class TokenBuckets:
    """One bucket per name, each holding up to ``per_minute`` tokens, refilled at ``per_minute`` a minute."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = MAX_BUCKETS):
        if per_minute < 1:
            raise ValueError(f"a rate limit is at least 1 request a minute, not {per_minute}")
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0  # tokens a second
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, name: str) -> float:
        """Take one token from ``name``'s bucket: 0 when there was one, else the seconds until there is."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(name, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.refill)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_buckets:
                    self._forget_idle(now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / self.refill

    def _forget_idle(self, now: float) -> None:
        full = [n for n, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * self.refill >= self.capacity]
        for name in full:
            del self._buckets[name]
        if len(self._buckets) > self.max_buckets:  # still too many: the longest untouched go
            for name, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: len(self._buckets) // 10]:
                del self._buckets[name]


def bearer_key(headers: Headers) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, or None."""
    scheme, _, key = (headers.get("authorization") or "").partition(" ")
    return (key.strip() or None) if scheme.lower() == "bearer" else None


class RateLimit:
    """ASGI middleware: the limits above. ``is_live(key)`` (blocking; run in a worker thread) tells
    whether a key is live; a live key's digest is remembered for :data:`LIVE_SECONDS`."""

    def __init__(self, app: ASGIApp, *, per_key: int, anonymous: int, is_live: Callable[[str], bool],
                 clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.keys = TokenBuckets(per_key, clock=clock)
        self.anonymous = TokenBuckets(anonymous, clock=clock)
        self.is_live = is_live
        self.clock = clock
        self._live: dict[str, float] = {}  # key digest -> until when it is taken as live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wait = await self._take(scope)
        if wait > 0:
            response = JSONResponse({"error": "too many requests: slow down and retry after the Retry-After seconds"},
                                    status_code=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _take(self, scope: Scope) -> float:
        key = bearer_key(Headers(scope=scope))
        if key is not None:
            digest = key_digest(key)
            if await self._live_digest(digest, key):
                return self.keys.take(digest)
        client = scope.get("client")
        return self.anonymous.take(client[0] if client else "unknown")

    async def _live_digest(self, digest: str, key: str) -> bool:
        now = self.clock()
        if self._live.get(digest, 0.0) > now:
            return True
        if not await run_in_threadpool(self.is_live, key):
            return False
        if len(self._live) > MAX_BUCKETS:
            self._live = {d: until for d, until in self._live.items() if until > now}
        self._live[digest] = now + LIVE_SECONDS
        return True
