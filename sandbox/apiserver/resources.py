"""The kinds the emulator serves: built-ins plus whatever CustomResourceDefinitions register."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResourceType:
    """One resource of one group/version, as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    has_scale: bool = False
    custom: bool = False  # served from a CRD: no strategic merge patch, deletes answer the object
    categories: tuple[str, ...] = ()
    storage_group: str | None = None  # kinds served under two groups share one store (core and events.k8s.io Events)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def store_key(self) -> tuple[str, str]:
        """Versions of one resource share one store, like etcd keys do."""
        return (self.group if self.storage_group is None else self.storage_group, self.plural)


def _core(kind: str, plural: str, namespaced: bool = True, *short: str, status: bool = False,
          categories: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType("", "v1", kind, plural, namespaced, tuple(short), has_status=status, categories=categories)


_ALL = ("all",)  # what `kubectl get all` expands to, as on a real cluster


BUILTINS: tuple[ResourceType, ...] = (
    _core("Namespace", "namespaces", False, "ns", status=True),
    _core("Pod", "pods", True, "po", status=True, categories=_ALL),
    _core("Service", "services", True, "svc", status=True, categories=_ALL),
    _core("Endpoints", "endpoints", True, "ep"),
    _core("ConfigMap", "configmaps", True, "cm"),
    _core("Secret", "secrets", True),
    _core("Event", "events", True, "ev"),
    _core("ServiceAccount", "serviceaccounts", True, "sa"),
    ResourceType("events.k8s.io", "v1", "Event", "events", True, ("ev",), storage_group=""),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), has_status=True, has_scale=True,
                 categories=_ALL),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), has_status=True, has_scale=True,
                 categories=_ALL),
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), has_status=True),
    ResourceType("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True),
    ResourceType("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
                 ("crd", "crds"), has_status=True),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), has_status=True),
    ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
                 has_status=True),
)

# Groups in the order discovery lists them (core first, like the real server).
_PREFERRED = {"": "v1"}


@dataclass
class Registry:
    """Resource types by group/version/plural and by kind; CRDs add and remove entries at run time."""

    _by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_kind: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)

    @classmethod
    def with_builtins(cls) -> Registry:
        registry = cls()
        registry.add_all(BUILTINS)
        return registry

    def add_all(self, types: Iterable[ResourceType]) -> None:
        for rtype in types:
            self._by_path[(rtype.group, rtype.version, rtype.plural)] = rtype
            self._by_kind[(rtype.group, rtype.version, rtype.kind)] = rtype

    def remove_group_plural(self, group: str, plural: str) -> list[ResourceType]:
        gone = [t for t in self._by_path.values() if t.group == group and t.plural == plural]
        for rtype in gone:
            del self._by_path[(rtype.group, rtype.version, rtype.plural)]
            self._by_kind.pop((rtype.group, rtype.version, rtype.kind), None)
        return gone

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return self._by_kind.get((group, version, kind))

    def resource(self, group: str, plural: str) -> ResourceType:
        """Any served version of `plural` in `group` (internal callers do not care which)."""
        for rtype in self._by_path.values():
            if rtype.group == group and rtype.plural == plural:
                return rtype
        raise KeyError(f"{plural}.{group} is not served")

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_path.values()))

    def group_versions(self) -> dict[str, list[str]]:
        """group -> versions, in a stable order (v1 before v1beta1, like the real server prefers)."""
        groups: dict[str, list[str]] = {}
        for rtype in self._by_path.values():
            versions = groups.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
        for versions in groups.values():
            versions.sort(key=_version_priority)
        return groups

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self._by_path.values() if t.group == group and t.version == version]


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version ordering: GA before beta before alpha, then higher numbers first."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    major = int(match.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor)
