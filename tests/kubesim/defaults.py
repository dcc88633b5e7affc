"""Defaulting: the fields the real server fills in when a client leaves them out.

Clients read these back (jkctl renders a pod and then compares, kubectl
shows them), so they are the real defaults, not convenient ones:

- pods: restartPolicy Always, terminationGracePeriodSeconds 30, dnsPolicy
  ClusterFirst, schedulerName default-scheduler, enableServiceLinks, an
  empty securityContext, serviceAccountName "default" (the ServiceAccount
  admission plugin's doing), priority 0 and preemptionPolicy, the two
  NoExecute tolerations DefaultTolerationSeconds adds; per container
  imagePullPolicy (Always for `:latest` or untagged, else IfNotPresent),
  terminationMessagePath/Policy, port protocol TCP, requests copied from
  limits; volume defaultMode 420; on create, status {phase: Pending,
  qosClass};
- secrets: type Opaque, `stringData` merged into base64 `data`;
- namespaces: the `kubernetes` finalizer, phase Active and the
  `kubernetes.io/metadata.name` label;
- limit ranges: default limits from max, default requests from default
  or min;
- resource quotas and limit ranges: quantities stored in canonical form
  (`0.5` reads back as `500m`, `1024Mi` as `1Gi`), as the real server
  re-encodes every `resource.Quantity` it decodes.
- nodes: what Go's encoder always writes because the fields have no
  `omitempty` (`spec: {}`, every `nodeInfo` string, the kubelet endpoint's
  `Port`, each condition's type and status, each address's type and
  address). Clients rely on them: the `kubernetes` client refuses to read a
  NodeList whose `nodeInfo` lacks a field, so one Node created with a
  partial status (`kubectl create -f node.yaml`) would break every
  `list_node()` in the cluster.

Not here: admission that depends on other objects (LimitRange defaults on
pods are in `limitrange.py`).
"""

from __future__ import annotations

import base64
from typing import Any

from tests.kubesim import resources
from tests.kubesim.quantity import parse
from tests.kubesim.resources import ResourceType

Obj = dict[str, Any]

_NOT_READY_TOLERATIONS = (
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
)
_DEFAULT_MODE = 420  # 0644
_LIMIT_RANGE_SECTIONS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")
_NODE_INFO_FIELDS = (
    "machineID",
    "systemUUID",
    "bootID",
    "kernelVersion",
    "osImage",
    "containerRuntimeVersion",
    "kubeletVersion",
    "kubeProxyVersion",
    "operatingSystem",
    "architecture",
)


def apply(rtype: ResourceType, obj: Obj) -> None:
    """Default `obj` (a decoded request body) in place."""
    if rtype is resources.PODS:
        _pod(obj)
    elif rtype is resources.SECRETS:
        _secret(obj)
    elif rtype is resources.NAMESPACES:
        _namespace(obj)
    elif rtype is resources.LIMITRANGES:
        _limit_range(obj)
    elif rtype is resources.RESOURCEQUOTAS:
        spec = obj.get("spec") or {}
        if spec.get("hard"):
            spec["hard"] = _canonical(spec["hard"])
    elif rtype is resources.NODES:
        _node(obj)


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, else IfNotPresent (digests included)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _container(container: Obj) -> None:
    if container.get("image"):
        container.setdefault("imagePullPolicy", image_pull_policy(container["image"]))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    resources_ = container.setdefault("resources", {})
    limits = resources_.get("limits") or {}
    if limits:
        requests = resources_.setdefault("requests", {})
        for name, value in limits.items():
            requests.setdefault(name, value)
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef")
        if field_ref is not None:
            field_ref.setdefault("apiVersion", "v1")


def _volume(volume: Obj) -> None:
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        if source in volume and volume[source] is not None:
            volume[source].setdefault("defaultMode", _DEFAULT_MODE)
    for item in (volume.get("downwardAPI") or {}).get("items") or []:
        if item.get("fieldRef") is not None:
            item["fieldRef"].setdefault("apiVersion", "v1")


def _pod(pod: Obj) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    for key in _NOT_READY_TOLERATIONS:
        if not any(t.get("key") == key for t in tolerations):
            tolerations.append(
                {
                    "key": key,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            )
    for kind in ("initContainers", "containers"):
        for container in spec.get(kind) or []:
            if isinstance(container, dict):
                _container(container)
    for volume in spec.get("volumes") or []:
        _volume(volume)


def qos_class(pod: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, as `qos.GetPodQOS` decides."""
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    any_set = False
    guaranteed = True
    for container in containers:
        res = container.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        for name in ("cpu", "memory"):
            if name in requests or name in limits:
                any_set = True
            if name not in limits or (
                name in requests and parse(requests[name]) != parse(limits[name])
            ):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def pod_initial_status(pod: Obj) -> None:
    """What the server writes into a new pod's status, whatever the client sent."""
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod)}


def _secret(secret: Obj) -> None:
    secret.setdefault("type", "Opaque")
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = secret.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _namespace(namespace: Obj) -> None:
    meta = namespace.setdefault("metadata", {})
    name = meta.get("name")
    if name:
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    namespace.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    namespace.setdefault("status", {}).setdefault("phase", "Active")


def _limit_range(limit_range: Obj) -> None:
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") != "Container":
            continue
        default = item.setdefault("default", {})
        default_request = item.setdefault("defaultRequest", {})
        for name, value in (item.get("max") or {}).items():
            default.setdefault(name, value)
        for name, value in default.items():
            default_request.setdefault(name, value)
        for name, value in (item.get("min") or {}).items():
            default_request.setdefault(name, value)
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        for section in _LIMIT_RANGE_SECTIONS:
            if item.get(section):
                item[section] = _canonical(item[section])
            elif section in item:
                del item[section]  # Go's omitempty: an empty map is not stored


def _canonical(quantities: dict[str, Any]) -> dict[str, str]:
    return {name: str(parse(str(value))) for name, value in quantities.items()}


def _node(node: Obj) -> None:
    if not isinstance(node.get("spec"), dict):
        node["spec"] = {}
    status = node["status"] = node.get("status") or {}
    info = status["nodeInfo"] = status.get("nodeInfo") or {}
    for name in _NODE_INFO_FIELDS:
        info.setdefault(name, "")
    endpoints = status["daemonEndpoints"] = status.get("daemonEndpoints") or {}
    kubelet = endpoints["kubeletEndpoint"] = endpoints.get("kubeletEndpoint") or {}
    kubelet.setdefault("Port", 0)
    for condition in status.get("conditions") or []:
        condition.setdefault("type", "")
        condition.setdefault("status", "")
    for address in status.get("addresses") or []:
        address.setdefault("type", "")
        address.setdefault("address", "")
