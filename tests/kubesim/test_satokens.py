"""Service-account tokens from the TokenRequest API, through the `kubernetes` client and kubectl."""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import Kubesim
from tests.kubesim.test_authz import status_of

pytestmark = pytest.mark.kubesim

KUBECTL = Path("/usr/bin/kubectl")


def token_kubeconfig(kubesim: Kubesim, token: str, path: Path) -> Path:
    """The admin kubeconfig's cluster, with a user holding only `token`."""
    config = yaml.safe_load(kubesim.kubeconfig.read_text())
    config["users"] = [{"name": "sa", "user": {"token": token}}]
    config["contexts"] = [{"name": "sa", "context": {"cluster": "kubesim", "user": "sa"}}]
    config["current-context"] = "sa"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def account(admin: client.ApiClient, kube_namespace: str) -> str:
    """A ServiceAccount `robot` that may read pods in the test namespace, and nothing else."""
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(kube_namespace, {"metadata": {"name": "robot"}})
    rbac.create_namespaced_role(
        kube_namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        kube_namespace,
        {
            "metadata": {"name": "robot-reads-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": kube_namespace}],
        },
    )
    return "robot"


def request_token(
    admin: client.ApiClient, namespace: str, seconds: int | None
) -> dict[str, object]:
    spec: dict[str, object] = {}
    if seconds is not None:
        spec["expirationSeconds"] = seconds
    answer = client.CoreV1Api(admin).create_namespaced_service_account_token(
        "robot",
        namespace,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
    )
    result: dict[str, object] = admin.sanitize_for_serialization(answer)
    return result


def test_token_request_answers_as_the_real_server(
    admin: client.ApiClient, kube_namespace: str, account: str
) -> None:
    before = int(time.time())
    answer = request_token(admin, kube_namespace, 1200)
    assert answer["kind"] == "TokenRequest"
    assert answer["spec"] == {
        "audiences": ["https://kubernetes.default.svc.cluster.local"],
        "expirationSeconds": 1200,
    }
    status = answer["status"]
    assert isinstance(status, dict)
    expires = datetime.datetime.fromisoformat(status["expirationTimestamp"]).timestamp()
    assert before + 1200 <= expires <= time.time() + 1200
    assert status["token"].count(".") == 2  # a JWT, as clients may expect
    defaulted = request_token(admin, kube_namespace, None)
    assert defaulted["spec"]["expirationSeconds"] == 3600  # type: ignore[index]


def test_the_token_authenticates_as_the_service_account(
    kubesim: Kubesim, admin: client.ApiClient, kube_namespace: str, account: str, tmp_path: Path
) -> None:
    token = request_token(admin, kube_namespace, 600)["status"]["token"]  # type: ignore[index]
    with api_client(token_kubeconfig(kubesim, token, tmp_path / "sa.kubeconfig")) as robot:
        review = client.AuthenticationV1Api(robot).create_self_subject_review({})
        assert review.status.user_info.username == f"system:serviceaccount:{kube_namespace}:robot"
        assert review.status.user_info.groups == [
            "system:serviceaccounts",
            f"system:serviceaccounts:{kube_namespace}",
            "system:authenticated",
        ]
        core = client.CoreV1Api(robot)
        assert core.list_namespaced_pod(kube_namespace).items == []
        with pytest.raises(ApiException) as raised:
            core.list_namespaced_secret(kube_namespace)
        assert status_of(raised.value)["message"] == (
            f'secrets is forbidden: User "system:serviceaccount:{kube_namespace}:robot" cannot '
            f'list resource "secrets" in API group "" in the namespace "{kube_namespace}"'
        )
        # Deleting the ServiceAccount revokes its bound tokens, even if one of that name returns.
        client.CoreV1Api(admin).delete_namespaced_service_account("robot", kube_namespace)
        client.CoreV1Api(admin).create_namespaced_service_account(
            kube_namespace, {"metadata": {"name": "robot"}}
        )
        with pytest.raises(ApiException) as raised:
            core.list_namespaced_pod(kube_namespace)
        assert raised.value.status == 401


def test_bad_token_requests(admin: client.ApiClient, kube_namespace: str, account: str) -> None:
    with pytest.raises(ApiException) as raised:
        request_token(admin, kube_namespace, 599)
    assert raised.value.status == 422
    assert status_of(raised.value)["message"] == (
        'TokenRequest.authentication.k8s.io "robot" is invalid: spec.expirationSeconds: '
        "Invalid value: 599: may not specify a duration less than 10 minutes"
    )
    with pytest.raises(ApiException) as raised:
        client.CoreV1Api(admin).create_namespaced_service_account_token(
            "nobody", kube_namespace, {"spec": {}}
        )
    assert raised.value.status == 404
    assert status_of(raised.value)["message"] == 'serviceaccounts "nobody" not found'


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl is not installed")
def test_kubectl_create_token(
    kubesim: Kubesim, kube_namespace: str, account: str, tmp_path: Path
) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(kubesim.kubeconfig)}

    def kubectl(*args: str, kubeconfig: Path | None = None) -> str:
        run_env = {**env, "KUBECONFIG": str(kubeconfig)} if kubeconfig else env
        result = subprocess.run(
            [str(KUBECTL), "-n", kube_namespace, *args],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    token = kubectl("create", "token", "robot", "--duration", "15m")
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["exp"] - claims["iat"] == 15 * 60  # kubectl sends protobuf: decoded right
    config = token_kubeconfig(kubesim, token, tmp_path / "robot.kubeconfig")
    assert kubectl("auth", "can-i", "list", "pods", kubeconfig=config) == "yes"
    result = subprocess.run(
        [str(KUBECTL), "-n", kube_namespace, "auth", "can-i", "create", "pods"],
        env={**env, "KUBECONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "no"
