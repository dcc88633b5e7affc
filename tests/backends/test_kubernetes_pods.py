"""The Kubernetes backend's pure parts: launch variables, the Secret and Pod, pod states."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from typing import Any

import pytest

from jkctl.backends.kubernetes import manifests
from jkctl.backends.kubernetes.kernel import replacement_pod
from jkctl.backends.kubernetes.launchvars import apply_launch, parse_launch_env
from jkctl.backends.kubernetes.podfacts import Outlook, judge
from jkctl.errors import TemplateError, UsageError
from jkctl.kube.podconfig import PodConfig, parse_pod_config
from jkctl.kube.podwatch import pod_state

ARGV = ("python", "-m", "ipykernel_launcher", "-f", "{connection_file}")
KEY = "f" * 64
IDENTITY = manifests.KernelIdentity(
    kernel_id="0b9e1b7c-0000-4000-8000-000000000001",
    kernelspec="python3",
    daemon_id="0123456789abcdef",
    owner="ada lovelace",
)


def spec_config(**block: Any) -> PodConfig:
    """A kernelspec's checked pod settings, as the loader makes them."""
    block = {"image": "quay.io/jupyter/base:1", **block}
    written = {key: value for key, value in block.items() if value is not None}
    return parse_pod_config(written, source="test kernel.json")


def render(env: dict[str, str] | None = None, **block: Any) -> dict[str, Any]:
    launch = parse_launch_env(env or {}, namespace="geo")
    config = apply_launch(spec_config(**block), launch)
    return manifests.pod_manifest(
        name=manifests.pod_name(IDENTITY.kernel_id),
        namespace="geo",
        identity=dataclasses.replace(IDENTITY, username=launch.username),
        argv=ARGV,
        spec_env={"SPEC_VAR": "from the spec"},
        launch_env=launch.env,
        config=config,
        lease_seconds=7200,
        generation=0,
    )


def kernel_container(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "kernel"
    return container


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in kernel_container(pod)["env"]}


def test_the_pod_runs_the_wrapped_kernelspec_as_non_root_and_never_holds_the_key() -> None:
    pod = render()
    container = kernel_container(pod)
    assert pod["metadata"]["name"] == f"jkctl-{IDENTITY.kernel_id}"
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert container["command"][-5:] == [
        "python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "/var/run/jkctl/connection/connection.json",
    ]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    secret_volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "connection")
    assert secret_volume["secret"]["secretName"] == pod["metadata"]["name"]
    assert KEY not in json.dumps(pod)
    assert env_of(pod)["SPEC_VAR"] == "from the spec"
    assert env_of(pod)["KERNEL_ID"] == IDENTITY.kernel_id


def test_labels_and_annotations_say_whose_kernel_it_is() -> None:
    pod = render({"KERNEL_USERNAME": "ada@example.com"})
    labels, annotations = pod["metadata"]["labels"], pod["metadata"]["annotations"]
    assert labels == {
        "app.kubernetes.io/managed-by": "jkctl",
        "app.kubernetes.io/component": "kernel",
        "jkctl.io/kernel-id": IDENTITY.kernel_id,
        "jkctl.io/kernelspec": "python3",
        "jkctl.io/owner": "ada-example.com",
        "jkctl.io/daemon": "0123456789abcdef",
    }
    assert annotations["jkctl.io/lease-seconds"] == "7200"
    assert annotations["jkctl.io/lease-renewed"]
    assert annotations["jkctl.io/username"] == "ada@example.com"
    assert annotations["jkctl.io/kernelspec"] == "python3"


def test_the_secret_holds_the_connection_file() -> None:
    connection = manifests.connection_file(key=KEY, kernelspec="python3")
    secret = manifests.secret_manifest(
        name="jkctl-x", namespace="geo", identity=IDENTITY, connection=connection
    )
    decoded = json.loads(base64.b64decode(secret["data"]["connection.json"]))
    assert decoded["key"] == KEY
    assert decoded["ip"] == "127.0.0.1"
    assert decoded["signature_scheme"] == "hmac-sha256"
    assert {decoded[f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb")} == set(
        range(20001, 20006)
    )
    assert manifests.read_connection(secret) == connection
    assert secret["metadata"]["labels"]["jkctl.io/daemon"] == IDENTITY.daemon_id


def test_launch_variables_shape_the_pod() -> None:
    pod = render(
        {
            "KERNEL_IMAGE": "registry.example:5000/team/kernel:2",
            "KERNEL_CPUS": "4",
            "KERNEL_MEMORY": "8Gi",
            "KERNEL_GPUS": "1",
            "KERNEL_WORKING_DIR": "/home/jovyan/work",
            "KERNEL_UID": "1001",
            "KERNEL_EXTRA": "passed through",
        }
    )
    container = kernel_container(pod)
    assert container["image"] == "registry.example:5000/team/kernel:2"
    # The requests went above the spec's limits: the limits follow. A GPU is only
    # limited (Kubernetes makes its request the limit).
    assert container["resources"] == {
        "requests": {"cpu": "4", "memory": "8Gi"},
        "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"},
    }
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"][
        "tolerations"
    ]
    assert pod["spec"]["securityContext"]["runAsUser"] == 1001
    assert env_of(pod)["KERNEL_EXTRA"] == "passed through"
    # The laptop's folder (Jupyter Server sends it with every launch) means nothing in a pod.
    assert "workingDir" not in container
    assert "KERNEL_WORKING_DIR" not in env_of(pod)


@pytest.mark.parametrize(
    "payload",
    [
        "{{ 7*7 }}{% raw %}x{% endraw %}",
        '"\nkind: Secret',
        'x", "privileged": true, "y": "',
        "a: b\n---\napiVersion: v1",
        "- item\n- other",
        "{'key': 'flow mapping'}",
        "&anchor *alias !!python/object:os.system",
    ],
)
def test_values_never_add_structure(payload: str) -> None:
    """A value is one value whatever it holds, or it is refused (control characters)."""
    env = {"KERNEL_USERNAME": payload, "KERNEL_FREEFORM": payload}
    if "\n" in payload:
        with pytest.raises(UsageError, match="is invalid") as raised:
            parse_launch_env(env, namespace="geo")
        assert "printable text on one line" in (raised.value.hint or "")
        return
    pod = render(env)
    assert env_of(pod)["KERNEL_FREEFORM"] == payload
    assert env_of(pod)["KERNEL_USERNAME"] == payload
    assert pod["metadata"]["annotations"]["jkctl.io/username"] == payload
    assert set(pod) == {"apiVersion", "kind", "metadata", "spec"}
    assert "privileged" not in json.dumps(kernel_container(pod)["securityContext"])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KERNEL_NAMESPACE": "elsewhere"}, "runs kernels in namespace geo, not elsewhere"),
        ({"KERNEL_NAMESPACE": "Not_A_Name"}, "KERNEL_NAMESPACE='Not_A_Name' is invalid"),
        ({"KERNEL_IMAGE": "registry/UPPER"}, "KERNEL_IMAGE='registry/UPPER' is invalid"),
        ({"KERNEL_IMAGE": "img:tag\nrm"}, "is invalid"),
        ({"KERNEL_CPUS": "two"}, "KERNEL_CPUS='two' is invalid"),
        ({"KERNEL_CPUS": "0"}, "KERNEL_CPUS='0' is invalid"),
        ({"KERNEL_MEMORY": "4"}, "KERNEL_MEMORY='4' is invalid"),
        ({"KERNEL_MEMORY": "4GB"}, "KERNEL_MEMORY='4GB' is invalid"),
        ({"KERNEL_GPUS": "1.5"}, "KERNEL_GPUS='1.5' is invalid"),
        ({"KERNEL_UID": "0"}, "KERNEL_UID='0' is invalid"),
        ({"KERNEL_VOLUMES": "[{}]"}, "KERNEL_VOLUMES is not supported"),
        ({"KERNEL_CPUS": "4", "KERNEL_CPUS_LIMIT": "2"}, "asks for 4 cpu but limits it to 2"),
    ],
)
def test_bad_launch_variables_are_refused_with_what_they_take(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as raised:
        apply_launch(spec_config(), parse_launch_env(env, namespace="geo"))
    assert raised.value.http_status == 400
    assert raised.value.hint


def test_the_daemons_own_namespace_is_fine() -> None:
    assert parse_launch_env({"KERNEL_NAMESPACE": "geo"}, namespace="geo").env


def test_the_launch_is_checked_with_the_kernelspec_schema() -> None:
    """What a spec could not ask for, a launch cannot either (the whole is checked again)."""
    spec = spec_config(resources={"limits": {"cpu": "1"}}, nodeSelector={"pool": "cpu"})
    config = apply_launch(spec, parse_launch_env({"KERNEL_CPUS": "3"}, namespace="geo"))
    assert config.resources.requests["cpu"] == "3"
    assert config.resources.limits["cpu"] == "3"  # the request raised the spec's limit
    assert config.node_selector == {"pool": "cpu"}
    gpu = apply_launch(spec, parse_launch_env({"KERNEL_GPUS": "2"}, namespace="geo"))
    assert gpu.resources.limits["nvidia.com/gpu"] == "2"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in list(
        gpu.tolerations
    )


def test_a_kernelspec_without_an_image_needs_kernel_image() -> None:
    with pytest.raises(TemplateError, match="names no image"):
        manifests.pod_manifest(
            name="jkctl-x",
            namespace="geo",
            identity=IDENTITY,
            argv=ARGV,
            spec_env={},
            launch_env={},
            config=PodConfig(),
            lease_seconds=60,
            generation=0,
        )
    pod = render({"KERNEL_IMAGE": "quay.io/team/kernel:1"}, image=None)
    assert kernel_container(pod)["image"] == "quay.io/team/kernel:1"


def pod_with(status: dict[str, Any], **meta: Any) -> Any:
    return pod_state(
        {
            "metadata": {"name": "jkctl-k", "namespace": "geo", **meta},
            "spec": {
                # Scheduled once a kubelet reports on its containers, or past Pending.
                "nodeName": "node-1"
                if status.get("phase") != "Pending" or "containerStatuses" in status
                else None,
                "containers": [{"name": "kernel", "image": "img:1"}],
            },
            "status": status,
        }
    )


def container(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"containerStatuses": [{"name": "kernel", "state": state, **extra}]}


@pytest.mark.parametrize(
    ("status", "outlook", "words"),
    [
        ({"phase": "Pending"}, Outlook.PENDING, "waiting for a node"),
        (
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/2 nodes are available: 2 Insufficient memory.",
                    }
                ],
            },
            Outlook.FAILED,
            "cannot schedule its pod jkctl-k: 0/2 nodes are available: 2 Insufficient memory.",
        ),
        (
            {
                "phase": "Pending",
                **container({"waiting": {"reason": "ErrImagePull", "message": "not found"}}),
            },
            Outlook.FAILED,
            "cannot pull the image img:1 for pod jkctl-k (ErrImagePull: not found)",
        ),
        (
            {"phase": "Pending", **container({"waiting": {"reason": "ContainerCreating"}})},
            Outlook.PENDING,
            "starting its container on node-1",
        ),
        ({"phase": "Running", **container({"running": {}})}, Outlook.RUNNING, ""),
        (
            {"phase": "Failed", **container({"terminated": {"exitCode": 3, "reason": "Error"}})},
            Outlook.FAILED,
            "The kernel's container in pod jkctl-k exited with code 3.",
        ),
        (
            {
                "phase": "Running",
                **container({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
            },
            Outlook.FAILED,
            "ran out of memory",
        ),
        (
            {"phase": "Failed", "reason": "Evicted", "message": "The node was low on memory."},
            Outlook.FAILED,
            "Its pod jkctl-k failed (Evicted: The node was low on memory.).",
        ),
    ],
)
def test_what_a_pod_state_means(status: dict[str, Any], outlook: Outlook, words: str) -> None:
    verdict = judge(pod_with(status))
    assert verdict.outlook is outlook
    assert words in verdict.reason


def test_a_pod_being_deleted_is_a_failure() -> None:
    verdict = judge(pod_with({"phase": "Running"}, deletionTimestamp="2024-01-01T00:00:00Z"))
    assert verdict.outlook is Outlook.FAILED
    assert "being deleted" in verdict.reason


def test_a_replacement_pod_is_the_same_pod_unscheduled_under_a_new_name() -> None:
    pod = render()
    pod["metadata"]["uid"] = "u-1"
    pod["spec"]["nodeName"] = "node-1"
    pod["status"] = {"phase": "Running"}
    copy = replacement_pod(pod, name="jkctl-x-1", generation=1)
    assert copy["metadata"]["name"] == "jkctl-x-1"
    assert "uid" not in copy["metadata"] and "status" not in copy
    assert "nodeName" not in copy["spec"]
    assert copy["metadata"]["annotations"]["jkctl.io/generation"] == "1"
    volume = next(v for v in copy["spec"]["volumes"] if v["name"] == "connection")
    assert volume["secret"]["secretName"] == "jkctl-x-1"
    assert copy["metadata"]["labels"] == pod["metadata"]["labels"]
