"""The watch stream: newline-delimited JSON events over a chunked response, as the real server writes them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from aiohttp import web

from . import tables
from .changes import Watcher, WatchEvent
from .conversion import view
from .encoding import Encoder
from .errors import ApiError
from .resources import ResourceType
from .storage import Store


def _line(event_type: str, obj: Any) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


async def serve_watch(request: web.Request, store: Store, encoder: Encoder, rtype: ResourceType,
                      watcher_args: dict[str, Any], *, timeout_seconds: float | None, bookmarks: bool,
                      bookmark_interval: float, closing: asyncio.Event, as_table: bool = False) -> web.StreamResponse:
    def encode(event: WatchEvent) -> bytes:
        obj = view(rtype, event.object)
        if as_table:  # `kubectl get -w` asks for one-row Tables so it can keep its columns
            return _line(event.type, tables.table(rtype.kind, [obj], obj["metadata"]["resourceVersion"]))
        return encoder.event_line(event.type, obj)

    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    try:
        watcher: Watcher | None = store.open_watch(rtype, **watcher_args)
    except ApiError as error:
        # The real server answers 200 and sends the failure as the stream's only event.
        await response.prepare(request)
        await response.write(_line("ERROR", error.status()))
        await response.write_eof()
        return response
    await response.prepare(request)
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    next_bookmark = time.monotonic() + bookmark_interval
    closed = asyncio.ensure_future(closing.wait())
    try:
        assert watcher is not None
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            wait = next_bookmark - now if bookmarks else None
            if deadline is not None:
                wait = deadline - now if wait is None else min(wait, deadline - now)
            chunk = []
            while not watcher.queue.empty():
                event = watcher.queue.get_nowait()
                chunk.append(encode(event))
            if chunk:
                await response.write(b"".join(chunk))
                continue
            if bookmarks and now >= next_bookmark:
                marker = {"kind": rtype.kind, "apiVersion": rtype.api_version,
                          "metadata": {"resourceVersion": str(store.resource_version)}}
                await response.write(_line("BOOKMARK", marker))
                next_bookmark = now + bookmark_interval
                continue
            getter = asyncio.ensure_future(watcher.queue.get())
            done, _ = await asyncio.wait({getter, closed}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await response.write(encode(getter.result()))
            else:
                getter.cancel()
            if closed in done:
                break
    except ConnectionError:
        return response  # the client went away (kubectl gave up, a test closed its stream): nothing to finish
    finally:
        closed.cancel()
        if watcher is not None:
            store.close_watch(watcher)
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response
