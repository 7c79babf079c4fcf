"""A Kubernetes API emulator on aiohttp, faithful where controllers depend on kube-apiserver, with
stand-ins for kube-controller-manager and the kubelet (sandbox.workloads).

    async with Sandbox() as sb:                  # in async code
        sb.url, sb.kubeconfig_path, sb.api_client()
    with SandboxThread(ready_delay=0.1) as sb:   # in sync code and tests: its own loop in a thread
        sb.call(lambda: sb.store.compact())      # run something on the store's loop

Knobs: `ready_delay` (timer runtime), `watch_window` (events kept; older resourceVersions get 410 Gone),
`bookmark_interval`, `runtime_factory` (a PodRuntime per sandbox, e.g. the process runtime),
`workloads=False` (API only), `directory`/`port`. `weir sandbox up --dir DIR` runs one in the foreground.

Not served: protobuf request bodies (kubectl's typed `create <kind>` commands), aggregated discovery
(clients fall back to per-group discovery), OpenAPI schemas, field ownership in server-side apply.
"""

from .changes import WatchEvent
from .errors import ApiError
from .resources import Registry, ResourceType
from .server import Sandbox, SandboxThread
from .storage import Store

__all__ = ["ApiError", "Registry", "ResourceType", "Sandbox", "SandboxThread", "Store", "WatchEvent"]
