"""Real kubectl, oldest and newest on the machine, agrees that kubesim is a Kubernetes API.

Against the session cluster with its real kubelet: the kubelet's nodes,
a pod created from a manifest that runs, logs, and a delete that waits for
the kubelet's graceful stop.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import Kubesim
from tests.kubesim.watching import wait_for_log

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


def test_get_nodes(kubectl: Kubectl) -> None:
    output = kubectl("get", "nodes").stdout.splitlines()
    assert output[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    rows = {line.split()[0]: line.split() for line in output[1:]}
    for node in ("kubesim-cpu", "kubesim-gpu"):  # the kubelet's
        row = rows[node]
        assert row[1:3] == ["Ready", "<none>"]
        assert row[4] == "v1.35.0"


def test_create_get_json_logs_and_delete(
    kubectl: Kubectl, kubesim: Kubesim, kube_namespace: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\n"
        "spec:\n  containers:\n  - name: app\n    image: python:3.11\n"
        # pid 1 handles SIGTERM, so the graceful delete ends as soon as it is sent.
        '    command: [sh, -c, \'echo hello; echo from web; trap "exit 0" TERM; '
        "sleep 60 & wait']\n"
    )
    ns = ("-n", kube_namespace)
    created = kubectl("create", "-f", str(manifest), *ns)
    assert created.stdout.strip() == "pod/web created"
    with api_client(kubesim.kubeconfig) as admin:
        wait_for_log(client.CoreV1Api(admin), kube_namespace, "web", "from web")
    listing = json.loads(kubectl("get", "pods", "-o", "json", *ns).stdout)
    assert listing["kind"] == "List"
    (pod,) = listing["items"]
    assert (pod["kind"], pod["metadata"]["name"]) == ("Pod", "web")
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert pod["spec"]["nodeName"] == "kubesim-cpu"
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    table = kubectl("get", "pods", *ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert table[1].split()[:4] == ["web", "1/1", "Running", "0"]
    assert kubectl("logs", "web", *ns).stdout == "hello\nfrom web\n"
    assert kubectl("logs", "web", "--tail=1", *ns).stdout == "from web\n"
    again = kubectl("create", "-f", str(manifest), *ns, check=False)
    assert again.returncode == 1
    assert 'pods "web" already exists' in again.stderr
    deleted = kubectl("delete", "pod", "web", *ns)  # waits until the kubelet has removed it
    assert deleted.stdout.strip() == 'pod "web" deleted'
    missing = kubectl("get", "pod", "web", *ns, check=False)
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
