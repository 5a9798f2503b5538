"""ASGI guards in front of the routes: body size and read time, and a per-client rate limit.

They are pure ASGI middleware (no request objects), so a refused request costs almost
nothing and never reaches validation or the model.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from typing import Any

_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _send_json(send: Any, status: int, payload: dict[str, Any], headers: Mapping[str, str] = {}) -> None:
    body = json.dumps(payload).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(key.encode(), value.encode()) for key, value in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _detail(kind: str, message: str) -> dict[str, Any]:
    return {"detail": [{"type": kind, "loc": ["body"], "msg": message}]}


class BodyGuardMiddleware:
    """Read the whole body under a size limit and a deadline before the app sees it.

    A body over the route's limit is a 422 naming the limit (checked on the declared
    Content-Length first, then on the bytes received); a client that stops sending before
    the body is complete gets a 408 after ``timeout_s`` and its connection is closed, so
    half-sent bodies cannot hold connections open.
    """

    def __init__(self, app: Any, *, max_bytes: int, timeout_s: float, limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.limits = dict(limits or {})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.max_bytes)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, limit, int(declared))
            return
        chunks: list[bytes] = []
        size, more = 0, True
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while more:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await _send_json(
                    send, 408, _detail("body_timeout", f"the request body must arrive within {self.timeout_s:g} s."),
                    {"connection": "close"},
                )
                return
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                await self._too_large(send, limit, size)
                return
        body = b"".join(chunks)
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(send: Any, limit: int, size: int) -> None:
        message = f"request body must be at most {limit} bytes. Got {size} bytes instead."
        await _send_json(send, 422, _detail("body_too_large", message), {"connection": "close"})


class RateLimitMiddleware:
    """A moving-window limit per client address on the given paths (the ``limits`` library).

    Counters live in ``storage_uri``: ``memory://`` counts per worker process, a
    ``redis://`` URL shares them across every worker and host. Over the limit: 429 with
    Retry-After.
    """

    def __init__(self, app: Any, *, limit: str, storage_uri: str, paths: frozenset[str]) -> None:
        from limits import parse, storage, strategies

        self.app = app
        self.item = parse(limit)
        self.limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))
        self.paths = paths

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.limiter.hit(self.item, client):
            await self.app(scope, receive, send)
            return
        reset_at = self.limiter.get_window_stats(self.item, client).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        await _send_json(
            send, 429, {"detail": f"rate limit of {self.item} per client exceeded; retry in {retry_after} s."},
            {"retry-after": str(retry_after)},
        )
