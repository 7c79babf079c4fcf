"""A Kubernetes API emulator on aiohttp, faithful where controllers depend on kube-apiserver.

Public surface: `Sandbox` (async context manager), `SandboxThread` (sync, background thread), `Store`.
"""

from .changes import WatchEvent
from .errors import ApiError
from .resources import Registry, ResourceType
from .server import Sandbox, SandboxThread
from .storage import Store

__all__ = ["ApiError", "Registry", "ResourceType", "Sandbox", "SandboxThread", "Store", "WatchEvent"]
