"""JSON encoding, once per stored object: GETs, LISTs and every watcher reuse the same bytes.

Stored objects are never mutated (each write stores a new dict), so an object's encoding stays valid for
as long as the object lives; the cache keeps the object itself to make the identity check safe.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Encoder:
    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._cache: OrderedDict[int, tuple[Any, bytes]] = OrderedDict()

    def encode(self, obj: dict[str, Any]) -> bytes:
        entry = self._cache.get(id(obj))
        if entry is not None and entry[0] is obj:
            self._cache.move_to_end(id(obj))
            return entry[1]
        data = dumps(obj)
        self._cache[id(obj)] = (obj, data)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return data

    def event_line(self, event_type: str, obj: dict[str, Any]) -> bytes:
        return b'{"type":"' + event_type.encode() + b'","object":' + self.encode(obj) + b"}\n"

    def listing(self, kind: str, api_version: str, resource_version: str, items: list[dict[str, Any]]) -> bytes:
        head = dumps({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": resource_version}})
        return head[:-1] + b',"items":[' + b",".join(self.encode(i) for i in items) + b"]}"
