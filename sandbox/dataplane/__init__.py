"""The sandbox's data plane: Service and Ingress traffic through a real nginx.

`NginxDataPlane` runs it, `ClusterFollower` keeps it in step with an API server; `render`,
`routes_from_ingresses` and `service_endpoints` are the pure steps from Kubernetes objects to nginx
configuration.
"""

from sandbox.dataplane.endpoints import POD_PORT_ANNOTATION, Endpoint, ServiceKey, pod_is_ready, service_endpoints
from sandbox.dataplane.follow import ClusterFollower
from sandbox.dataplane.ingress import CanaryPolicy, IngressError, Route, canary_policy, routes_from_ingresses
from sandbox.dataplane.nginx import DataPlaneError, NginxDataPlane
from sandbox.dataplane.nginx_config import NginxLayout, render

__all__ = [
    "POD_PORT_ANNOTATION",
    "CanaryPolicy",
    "ClusterFollower",
    "DataPlaneError",
    "Endpoint",
    "IngressError",
    "NginxDataPlane",
    "NginxLayout",
    "Route",
    "ServiceKey",
    "canary_policy",
    "pod_is_ready",
    "render",
    "routes_from_ingresses",
    "service_endpoints",
]
