"""Real kubectl, oldest and newest on the machine, agrees that kubesim is a Kubernetes API."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.kubesim.conftest import InProcess, api_client
from tests.kubesim.fixture import Kubesim
from tests.kubesim.test_streams import running_pod

pytestmark = pytest.mark.kubesim

SDK = Path("/usr/lib/google-cloud-sdk/bin")
KUBECTLS = {
    "kubectl": Path("/usr/bin/kubectl"),
    "1.27": SDK / "kubectl.1.27",
    "1.33": SDK / "kubectl.1.33",
}


@pytest.fixture(params=sorted(KUBECTLS))
def kubectl_binary(request: pytest.FixtureRequest) -> Path:
    binary = KUBECTLS[request.param]
    if not binary.exists():
        pytest.skip(f"{binary} is not installed")
    return binary


class Kubectl:
    def __init__(self, binary: Path, kubeconfig: Path, home: Path) -> None:
        self.binary, self.kubeconfig, self.home = binary, kubeconfig, home

    def __call__(
        self, *args: str, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HOME": str(self.home),
            "KUBECONFIG": str(kubeconfig or self.kubeconfig),
        }
        result = subprocess.run(
            [str(self.binary), "--cache-dir", str(self.home / "cache"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result


@pytest.fixture
def kubectl(kubectl_binary: Path, kubesim: Kubesim, tmp_path: Path) -> Kubectl:
    return Kubectl(kubectl_binary, kubesim.kubeconfig, tmp_path)


@pytest.fixture
def node(kubesim: Kubesim, kubectl_binary: Path) -> Iterator[str]:
    name = f"kubectl-node-{kubectl_binary.name.replace('.', '-')}"
    with api_client(kubesim.kubeconfig) as admin:
        core = client.CoreV1Api(admin)
        core.create_node(
            {
                "metadata": {"name": name, "labels": {"node-role.kubernetes.io/worker": ""}},
                "status": {
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "nodeInfo": {
                        "architecture": "amd64",
                        "bootID": "b",
                        "containerRuntimeVersion": "kubesim://1",
                        "kernelVersion": "6",
                        "kubeProxyVersion": "",
                        "kubeletVersion": "v1.35.0-kubesim",
                        "machineID": "m",
                        "operatingSystem": "linux",
                        "osImage": "kubesim",
                        "systemUUID": "u",
                    },
                },
            }
        )
        try:
            yield name
        finally:
            core.delete_node(name)


def test_get_nodes(kubectl: Kubectl, node: str) -> None:
    output = kubectl("get", "nodes").stdout.splitlines()
    assert output[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    row = next(line.split() for line in output if line.startswith(node))
    assert row[1:3] == ["Ready", "worker"]
    assert row[4] == "v1.35.0-kubesim"


def test_create_get_json_and_delete(kubectl: Kubectl, kube_namespace: str, tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\n"
        "spec:\n  schedulerName: kubesim-api-tests\n"  # stays Pending whatever else runs
        "  containers:\n  - name: app\n    image: python:3.11\n    command: [sleep, '60']\n"
    )
    created = kubectl("create", "-f", str(manifest), "-n", kube_namespace)
    assert created.stdout.strip() == "pod/web created"
    listing = json.loads(kubectl("get", "pods", "-o", "json", "-n", kube_namespace).stdout)
    assert listing["kind"] == "List"
    (pod,) = listing["items"]
    assert (pod["kind"], pod["metadata"]["name"]) == ("Pod", "web")
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    table = kubectl("get", "pods", "-n", kube_namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert table[1].split()[:4] == ["web", "0/1", "Pending", "0"]
    again = kubectl("create", "-f", str(manifest), "-n", kube_namespace, check=False)
    assert again.returncode == 1
    assert 'pods "web" already exists' in again.stderr
    deleted = kubectl("delete", "pod", "web", "-n", kube_namespace)
    assert deleted.stdout.strip() == 'pod "web" deleted'
    missing = kubectl("get", "pod", "web", "-n", kube_namespace, check=False)
    assert missing.returncode == 1
    assert 'pods "web" not found' in missing.stderr


def test_auth_can_i(kubectl: Kubectl, kubesim: Kubesim, kube_namespace: str) -> None:
    user = f"dora-{kubectl.binary.name.replace('.', '-')}"
    own = kubesim.new_user(user)
    denied = kubectl(
        "auth", "can-i", "create", "pods", "-n", kube_namespace, check=False, kubeconfig=own
    )
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    kubectl(
        "create",
        "rolebinding",
        "dora",
        "--clusterrole=edit",
        f"--user={user}",
        "-n",
        kube_namespace,
    )
    allowed = kubectl(
        "auth", "can-i", "create", "pods/portforward", "-n", kube_namespace, kubeconfig=own
    )
    assert allowed.stdout.strip() == "yes"
    forbidden = kubectl("get", "secrets", "-n", "default", check=False, kubeconfig=own)
    assert forbidden.returncode == 1
    assert (
        f'User "{user}" cannot list resource "secrets" in API group "" in the namespace "default"'
        in forbidden.stderr
    )


def test_logs_through_the_api_server(
    kubectl_binary: Path, sim: InProcess, sim_admin: client.ApiClient, tmp_path: Path
) -> None:
    core = client.CoreV1Api(sim_admin)
    namespace = sim.handle.create_namespace("logs")
    running_pod(core, namespace, "kernel")
    kubectl = Kubectl(kubectl_binary, sim.handle.kubeconfig, tmp_path)
    assert (
        kubectl("logs", "kernel", "-n", namespace).stdout
        == "main line 1\nmain line 2\nmain line 3\n"
    )
    assert kubectl("logs", "kernel", "-n", namespace, "--tail=1").stdout == "main line 3\n"


def test_typed_create_commands(kubectl: Kubectl, kubesim: Kubesim, kube_namespace: str) -> None:
    # Newer kubectls send these as protobuf.
    ns = ("-n", kube_namespace)
    kubectl("create", "secret", "generic", "conn", "--from-literal=key=s3cret", *ns)
    kubectl("create", "configmap", "settings", "--from-literal=mode=fast", *ns)
    kubectl("create", "quota", "compute", "--hard=requests.cpu=2,pods=4", *ns)
    kubectl("create", "serviceaccount", "runner", *ns)
    with api_client(kubesim.kubeconfig) as admin:
        core = client.CoreV1Api(admin)
        assert core.read_namespaced_secret("conn", kube_namespace).data == {"key": "czNjcmV0"}
        assert core.read_namespaced_config_map("settings", kube_namespace).data == {"mode": "fast"}
        hard = core.read_namespaced_resource_quota("compute", kube_namespace).spec.hard
        assert hard == {"requests.cpu": "2", "pods": "4"}
        assert (
            core.read_namespaced_service_account("runner", kube_namespace).metadata.name == "runner"
        )
