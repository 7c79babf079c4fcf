"""A Kubernetes API emulator on aiohttp, faithful where controllers depend on kube-apiserver.

Public surface: `Sandbox` (async context manager), `SandboxThread` (sync, background thread), `Store`.
"""

from .errors import ApiError
from .resources import Registry, ResourceType
from .server import Sandbox, SandboxThread
from .storage import Store, WatchEvent

__all__ = ["ApiError", "Registry", "ResourceType", "Sandbox", "SandboxThread", "Store", "WatchEvent"]
