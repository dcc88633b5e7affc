"""A kernel's Kubernetes objects: its connection Secret and its Pod, and how they are named.

Layout of what jkctl puts in the cluster for one kernel (``ID`` is the kernel
id, ``N`` the pod's generation: 0, then 1, 2... when a restart had to
replace the pod):

- **Secret** ``jkctl-ID[-N]``, key ``connection.json``: the kernel's
  connection file (fixed ports 20001-20005 on ``127.0.0.1``, ``tcp``, a fresh
  HMAC key, hmac-sha256). The key lives only here: never in the pod spec or
  its environment. Labelled like the pod; owned by the pod once it exists
  (``ownerReferences``), so deleting the pod deletes it.
- **Pod** ``jkctl-ID[-N]``, rendered from the pod template
  (:func:`jkctl.kube.podtemplate.render_pod`): the kernelspec's argv wrapped
  by the lease-and-restart wrapper, the Secret mounted read-only, non-root,
  no privilege escalation, requests and limits always set.

Labels (selectable): ``app.kubernetes.io/managed-by=jkctl``,
``app.kubernetes.io/component=kernel``, ``jkctl.io/kernel-id``,
``jkctl.io/kernelspec`` (label-safe), ``jkctl.io/owner`` (label-safe user),
``jkctl.io/daemon`` (the id of the daemon's state folder: a restarted daemon
finds its pods by it, and leaves other users' alone).

Annotations: ``jkctl.io/lease-seconds`` and ``jkctl.io/lease-renewed`` (the
lease the pod's wrapper enforces; renewed by the daemon), ``jkctl.io/kernelspec``
(the exact name), ``jkctl.io/generation``, ``jkctl.io/username``
(KERNEL_USERNAME, when given), ``jkctl.io/last-activity`` (the kernel's last
activity as its daemon saw it, written with each lease renewal: a restarted
daemon and `jkctl kernels list` without a daemon read it).

Pure functions: nothing here talks to the API.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jkctl.backends.base import CHANNELS
from jkctl.errors import TemplateError
from jkctl.kube.podconfig import PodConfig
from jkctl.kube.podtemplate import (
    KernelPodValues,
    kernel_command,
    kernel_pod_values,
    render_kernel_pod,
)

#: The kernel's ports inside its pod (its own network namespace: no clashes).
KERNEL_PORTS: Mapping[str, int] = {
    "shell": 20001,
    "iopub": 20002,
    "stdin": 20003,
    "control": 20004,
    "hb": 20005,
}
CONNECTION_FILE = "connection.json"
CONNECTION_DIR = KernelPodValues.connection_dir

MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "app.kubernetes.io/component"
KERNEL_ID = "jkctl.io/kernel-id"
KERNELSPEC = "jkctl.io/kernelspec"
OWNER = "jkctl.io/owner"
DAEMON = "jkctl.io/daemon"
LEASE_SECONDS = "jkctl.io/lease-seconds"
LEASE_RENEWED = "jkctl.io/lease-renewed"
GENERATION = "jkctl.io/generation"
USERNAME = "jkctl.io/username"
LAST_ACTIVITY = "jkctl.io/last-activity"
#: On a pod started for the warm pool and not yet handed to anyone (removed when it is).
POOL = "jkctl.io/pool"
POOL_WAITING = "waiting"

_NOT_LABEL_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_RESERVED_ENV = ("JKCTL_",)


@dataclass(frozen=True, kw_only=True)
class KernelIdentity:
    """Who a kernel belongs to and what it is, as the labels say."""

    kernel_id: str
    kernelspec: str
    daemon_id: str
    owner: str
    username: str | None = None
    #: Started ahead of time for the warm pool, not yet anyone's.
    pooled: bool = False


def pod_name(kernel_id: str, generation: int = 0) -> str:
    return f"jkctl-{kernel_id}" if generation == 0 else f"jkctl-{kernel_id}-{generation}"


def daemon_selector(daemon_id: str) -> str:
    """The label selector for every kernel pod of one daemon."""
    return f"{MANAGED_BY}=jkctl,{DAEMON}={daemon_id}"


def label_value(text: str) -> str:
    """``text`` as a valid label value: at most 63 of [A-Za-z0-9._-], alphanumeric ends."""
    cleaned = _NOT_LABEL_SAFE.sub("-", text)[:63].strip("-_.")
    return cleaned or "unknown"


def lease_token(now: datetime.datetime | None = None) -> str:
    """A renewal value: the daemon's time (only its changing matters to the pod)."""
    moment = now or datetime.datetime.now(datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def timestamp(seconds: float) -> str:
    """Epoch seconds as an annotation value (RFC 3339, UTC, milliseconds)."""
    return lease_token(datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC))


def connection_file(*, key: str, kernelspec: str) -> dict[str, Any]:
    """The kernel's connection file: fixed ports on the pod's loopback, this kernel's key."""
    return {
        **{f"{channel}_port": KERNEL_PORTS[channel] for channel in CHANNELS},
        "ip": "127.0.0.1",
        "transport": "tcp",
        "key": key,
        "signature_scheme": "hmac-sha256",
        "kernel_name": kernelspec,
    }


def labels(identity: KernelIdentity) -> dict[str, str]:
    return {
        MANAGED_BY: "jkctl",
        COMPONENT: "kernel",
        KERNEL_ID: identity.kernel_id,
        KERNELSPEC: label_value(identity.kernelspec),
        OWNER: label_value(identity.username or identity.owner),
        DAEMON: identity.daemon_id,
    } | ({POOL: POOL_WAITING} if identity.pooled else {})


def unpool_patch() -> dict[str, Any]:
    """The merge patch that hands a pooled pod to its user."""
    return {"metadata": {"labels": {POOL: None}}}


def secret_manifest(
    *, name: str, namespace: str, identity: KernelIdentity, connection: Mapping[str, Any]
) -> dict[str, Any]:
    encoded = base64.b64encode(json.dumps(connection).encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(identity)},
        "data": {CONNECTION_FILE: encoded},
    }


def owner_patch(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that makes a Secret belong to ``pod`` (and go with it)."""
    metadata = pod["metadata"]
    reference = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": metadata["name"],
        "uid": metadata["uid"],
        "blockOwnerDeletion": False,
    }
    return {"metadata": {"ownerReferences": [reference]}}


def read_connection(secret: Mapping[str, Any]) -> dict[str, Any] | None:
    """The connection file in a kernel's Secret, or None if it holds none."""
    data = (secret.get("data") or {}).get(CONNECTION_FILE)
    try:
        parsed = json.loads(base64.b64decode(data)) if isinstance(data, str) else None
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and isinstance(parsed.get("key"), str) else None


def pod_manifest(
    *,
    name: str,
    namespace: str,
    identity: KernelIdentity,
    argv: tuple[str, ...],
    spec_env: Mapping[str, str],
    launch_env: Mapping[str, str],
    config: PodConfig,
    lease_seconds: int,
    generation: int,
) -> dict[str, Any]:
    """The kernel's Pod, rendered from its kernelspec's template and validated as a Pod."""
    if not config.image:
        raise TemplateError(
            f"The kernelspec '{identity.kernelspec}' names no image for its pod "
            "(metadata.jkctl.image).",
            hint="Give the kernelspec an image, or pass KERNEL_IMAGE in the launch request.",
        )
    now = lease_token()
    annotations = {
        LEASE_SECONDS: str(lease_seconds),
        LEASE_RENEWED: now,
        LAST_ACTIVITY: now,
        KERNELSPEC: identity.kernelspec,
        GENERATION: str(generation),
    }
    if identity.username:
        annotations[USERNAME] = identity.username
    values = kernel_pod_values(
        config,
        pod_name=name,
        namespace=namespace,
        kernel_id=identity.kernel_id,
        command=kernel_command(argv, connection_file=f"{CONNECTION_DIR}/{CONNECTION_FILE}"),
        secret_name=name,
        labels=labels(identity),
        annotations=annotations,
        spec_env=_user_env(spec_env),
        launch_env={
            **_user_env(launch_env),
            "KERNEL_ID": identity.kernel_id,
            # The wrapper checks the lease this often (well inside the lease).
            "JKCTL_LEASE_CHECK_SECONDS": str(max(1, min(10, lease_seconds // 4))),
        },
    )
    return render_kernel_pod(config, values)


def warm_up() -> None:
    """Render a sample pod once, so that the first real one is as quick as the rest."""
    identity = KernelIdentity(kernel_id="warm-up", kernelspec="warm-up", daemon_id="0", owner="-")
    pod_manifest(
        name="jkctl-warm-up",
        namespace="default",
        identity=identity,
        argv=("python", "-m", "ipykernel_launcher", "-f", "{connection_file}"),
        spec_env={},
        launch_env={},
        config=PodConfig(image="busybox"),
        lease_seconds=60,
        generation=0,
    )


def _user_env(env: Mapping[str, str]) -> dict[str, str]:
    """Variables from specs and requests, without the ones the pod template sets."""
    return {k: v for k, v in env.items() if not k.startswith(_RESERVED_ENV)}
