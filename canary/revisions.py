"""The pod templates of promoted revisions, for `undo`: kept in a ConfigMap `<name>-weir-revisions` that
the Deployment owns (so it goes when the Deployment goes), bounded like revisionHistoryLimit.

The state annotation keeps only revision numbers and hashes; templates can be large, and a ConfigMap
keeps them out of every read of the Deployment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubernetes.client import ApiClient

from adapters.kube import ObjectCache, Resource
from adapters.ownership import owner_reference
from canary.annotations import MANAGED_BY_LABEL, MANAGED_BY_VALUE, PART_OF_LABEL
from canary.workload import owner_of

SUFFIX = "-weir-revisions"


def store_name(deployment: str) -> str:
    return deployment + SUFFIX


class RevisionStore:
    def __init__(self, api: ApiClient, cache: ObjectCache | None = None) -> None:
        self.configmaps = Resource(api, "configmaps", cache=cache)

    def record(self, deployment: Mapping[str, Any], number: int, template_hash: str, template: Mapping[str, Any],
               keep: int) -> None:
        """Store revision `number` (idempotent) and drop all but the newest `keep` revisions."""
        meta = deployment["metadata"]
        entry = json.dumps({"hash": template_hash, "template": template}, sort_keys=True)
        existing = self._read(meta["namespace"], meta["name"])
        if existing is None:
            body = {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": store_name(meta["name"]), "namespace": meta["namespace"],
                    "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, PART_OF_LABEL: meta["name"]},
                    "ownerReferences": [owner_reference(owner_of(deployment))],
                },
                "data": {str(number): entry},
            }
            self.configmaps.create(meta["namespace"], body)
            return
        data = dict(existing.get("data") or {})
        if data.get(str(number)) == entry and len(data) <= keep:
            return
        data[str(number)] = entry
        newest = sorted((int(k) for k in data), reverse=True)[:keep]
        existing["data"] = {str(k): data[str(k)] for k in newest}
        self.configmaps.replace(meta["namespace"], existing["metadata"]["name"], existing)

    def get(self, namespace: str, name: str, number: int) -> tuple[str, dict[str, Any]] | None:
        """(template hash, pod template) of revision `number`, or None if it is not kept."""
        existing = self._read(namespace, name)
        text = ((existing or {}).get("data") or {}).get(str(number))
        if text is None:
            return None
        entry = json.loads(text)
        return str(entry["hash"]), dict(entry["template"])

    def find(self, namespace: str, name: str, template_hash: str) -> dict[str, Any] | None:
        """The kept pod template whose hash is `template_hash`, or None."""
        existing = self._read(namespace, name)
        for text in ((existing or {}).get("data") or {}).values():
            entry = json.loads(text)
            if entry.get("hash") == template_hash:
                return dict(entry["template"])
        return None

    def _read(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.configmaps.get(namespace, store_name(name))
