"""Simulated nodes: their Node objects, readiness, pod addresses and image caches.

A `NodeSpec` describes a node; `NodeState` is the kubelet's live view of it
(ready or not, the images it holds, the pod IPs it has handed out) and writes
the Node object the way a kubelet and the node lifecycle controller would:
capacity and allocatable, the four pressure conditions plus Ready, nodeInfo,
addresses, the well-known labels, taints (including
`node.kubernetes.io/unreachable` while the node is not ready, which is how
the real scheduler comes to avoid it) and `status.images`. No heartbeats or
Leases: nothing in kubesim reads them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.kubesim import resources
from tests.kubesim.broadcast import Broadcast
from tests.kubesim.quantity import parse_cpu, parse_memory
from tests.kubesim.store import Obj, Store, now_rfc3339

KUBELET_VERSION = "v1.35.0"  # the API server's minor (discovery.VERSION_INFO): no skew
GPU_RESOURCE = "nvidia.com/gpu"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
MAX_PODS = 110


@dataclass(frozen=True, kw_only=True)
class NodeSpec:
    name: str
    cpu: str
    memory: str
    gpu: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()


def default_nodes() -> tuple[NodeSpec, ...]:
    """Two nodes: a CPU node, and a GPU node that only pods tolerating its taint land on."""
    return (
        NodeSpec(name="kubesim-cpu", cpu="8", memory="16Gi"),
        NodeSpec(
            name="kubesim-gpu",
            cpu="8",
            memory="32Gi",
            gpu=2,
            labels={"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "Tesla-T4"},
            taints=({"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"},),
        ),
    )


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _resources(spec: NodeSpec) -> dict[str, str]:
    found = {
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": str(MAX_PODS),
        "ephemeral-storage": "100Gi",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    if spec.gpu:
        found[GPU_RESOURCE] = str(spec.gpu)
    return found


class NodeState:
    def __init__(self, spec: NodeSpec, index: int) -> None:
        self.spec = spec
        self.name = spec.name
        self.ready = True
        self.images: dict[str, int] = {}  # normalised image name -> size in bytes
        self.images_changed = Broadcast()
        self.host_ip = f"172.18.0.{index + 2}"
        self.pod_cidr = ipaddress.ip_network(f"10.244.{index}.0/24")
        self._used_ips: set[str] = set()

    def allocatable(self) -> dict[str, int]:
        """Allocatable in scheduler units: millicores, bytes, counts."""
        return {
            "cpu": parse_cpu(self.spec.cpu),
            "memory": parse_memory(self.spec.memory),
            "pods": MAX_PODS,
            GPU_RESOURCE: self.spec.gpu,
        }

    def allocate_ip(self) -> str:
        for host in list(self.pod_cidr.hosts())[1:]:
            ip = str(host)
            if ip not in self._used_ips:
                self._used_ips.add(ip)
                return ip
        raise RuntimeError(f"node {self.name} has no pod IPs left")

    def release_ip(self, ip: str) -> None:
        self._used_ips.discard(ip)

    def taints(self) -> list[dict[str, Any]]:
        taints = [dict(taint) for taint in self.spec.taints]
        if not self.ready:
            taints.append(
                {"key": UNREACHABLE_TAINT, "effect": "NoSchedule", "timeAdded": now_rfc3339()}
            )
        return taints

    def render(self) -> Obj:
        now = now_rfc3339()
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            **self.spec.labels,
        }
        spec: dict[str, Any] = {"podCIDR": str(self.pod_cidr), "podCIDRs": [str(self.pod_cidr)]}
        if taints := self.taints():
            spec["taints"] = taints
        return {
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            },
            "spec": spec,
            "status": {
                "capacity": _resources(self.spec),
                "allocatable": _resources(self.spec),
                "conditions": self._conditions(now),
                "addresses": [
                    {"type": "InternalIP", "address": self.host_ip},
                    {"type": "Hostname", "address": self.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": _digest(self.name, "machine")[:32],
                    "systemUUID": str(uuid.UUID(_digest(self.name, "system")[:32])),
                    "bootID": str(uuid.UUID(_digest(self.name, "boot")[:32])),
                    "kernelVersion": os.uname().release,
                    "osImage": "kubesim (Debian GNU/Linux 12)",
                    "containerRuntimeVersion": "containerd://1.7.20",
                    "kubeletVersion": KUBELET_VERSION,
                    "kubeProxyVersion": KUBELET_VERSION,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
                "images": self._images(),
            },
        }

    def _images(self) -> list[dict[str, Any]]:
        from tests.kubesim.images import image_id

        return [
            {"names": [image_id(name), name], "sizeBytes": size}
            for name, size in sorted(self.images.items())
        ]

    def _conditions(self, now: str) -> list[dict[str, Any]]:
        table = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory",
             "kubelet has sufficient memory available"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID",
             "kubelet has sufficient PID available"),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]  # fmt: skip
        unknown = ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        conditions = []
        for kind, *healthy in table:
            status, reason, message = healthy if self.ready else unknown
            conditions.append(
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            )
        return conditions

    def publish(self, store: Store) -> None:
        """Create or update the Node object; transition times move only on a change."""
        rendered = self.render()
        current = store.try_get(resources.NODES, None, self.name)
        if current is None:
            store.create(resources.NODES, rendered)
            return

        def change(node: Obj) -> None:
            old = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
            for condition in rendered["status"]["conditions"]:
                before = old.get(condition["type"])
                if before is not None and before.get("status") == condition["status"]:
                    condition["lastTransitionTime"] = before.get("lastTransitionTime")
                    condition["lastHeartbeatTime"] = before.get("lastHeartbeatTime")
            node["spec"].update(rendered["spec"])
            if "taints" not in rendered["spec"]:
                node["spec"].pop("taints", None)
            node["status"] = rendered["status"]
            node["metadata"].setdefault("labels", {}).update(rendered["metadata"]["labels"])

        store.mutate(resources.NODES, None, self.name, change)
