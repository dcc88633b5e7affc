"""Authentication and RBAC through real clients: 401, 403 wording, SelfSubjectAccessReview."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import Kubesim

pytestmark = pytest.mark.kubesim


def status_of(error: ApiException) -> dict[str, object]:
    body: dict[str, object] = json.loads(error.body)
    return body


@pytest.fixture
def alice(kubesim: Kubesim) -> Iterator[client.ApiClient]:
    with api_client(kubesim.new_user("alice", ["team-a"])) as api:
        yield api


def bind(
    admin: client.ApiClient,
    namespace: str,
    name: str,
    role: str,
    subject: dict[str, str],
    *,
    kind: str = "ClusterRole",
) -> None:
    client.RbacAuthorizationV1Api(admin).create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [subject],
        },
    )


def raw_get(api: client.ApiClient, path: str) -> tuple[int, dict[str, object]]:
    method, url, headers, *_ = api.param_serialize("GET", path, auth_settings=["BearerToken"])
    response = api.call_api(method, url, header_params=headers)
    response.read()
    body: dict[str, object] = json.loads(response.data)
    return response.status, body


def can_i(api: client.ApiClient, **attributes: str) -> client.V1SubjectAccessReviewStatus:
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": attributes}}
    )
    return review.status


def test_a_bad_token_is_unauthorized(kubesim: Kubesim, tmp_path: Path) -> None:
    config = yaml.safe_load(kubesim.kubeconfig.read_text())
    for user in config["users"]:
        user["user"]["token"] = "not-a-token"
    forged = tmp_path / "forged.kubeconfig"
    forged.write_text(yaml.safe_dump(config))
    with api_client(forged) as api, pytest.raises(ApiException) as raised:
        client.CoreV1Api(api).list_namespace()
    assert raised.value.status == 401
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_no_rights_is_forbidden_with_the_real_wording(
    alice: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(alice)
    with pytest.raises(ApiException) as raised:
        core.list_namespaced_pod(kube_namespace)
    assert raised.value.status == 403
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
        f'in the namespace "{kube_namespace}"',
        "reason": "Forbidden",
        "details": {"kind": "pods"},
        "code": 403,
    }
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_secret("conn", kube_namespace)
    assert status_of(raised.value)["message"] == (
        'secrets "conn" is forbidden: User "alice" cannot get resource "secrets" in API group "" '
        f'in the namespace "{kube_namespace}"'
    )
    with pytest.raises(ApiException) as raised:
        core.list_node()
    assert status_of(raised.value)["message"] == (
        'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" '
        "at the cluster scope"
    )
    with pytest.raises(ApiException) as raised:
        client.RbacAuthorizationV1Api(alice).list_namespaced_role(kube_namespace)
    assert status_of(raised.value)["message"] == (
        'roles.rbac.authorization.k8s.io is forbidden: User "alice" cannot list resource "roles" '
        f'in API group "rbac.authorization.k8s.io" in the namespace "{kube_namespace}"'
    )
    # Authorization comes before routing, as on a real server.
    status, body = raw_get(alice, f"/api/v1/namespaces/{kube_namespace}/nothings")
    assert status == 403
    assert body["message"] == (
        'nothings is forbidden: User "alice" cannot list resource "nothings" in API group "" '
        f'in the namespace "{kube_namespace}"'
    )
    status, body = raw_get(alice, "/nothing/here")
    assert (status, body["message"]) == (
        403,
        'forbidden: User "alice" cannot get path "/nothing/here"',
    )


def test_self_subject_access_review_agrees_with_requests(
    admin: client.ApiClient, alice: client.ApiClient, kube_namespace: str
) -> None:
    denied = can_i(alice, namespace=kube_namespace, verb="list", resource="pods")
    assert denied.allowed is False
    assert denied.reason is None
    bind(admin, kube_namespace, "alice-edit", "edit", {"kind": "User", "name": "alice"})
    allowed = can_i(alice, namespace=kube_namespace, verb="list", resource="pods")
    assert allowed.allowed is True
    assert allowed.reason == (
        f'RBAC: allowed by RoleBinding "alice-edit/{kube_namespace}" of ClusterRole "edit" '
        'to User "alice"'
    )
    assert client.CoreV1Api(alice).list_namespaced_pod(kube_namespace).items == []
    # edit does not reach other namespaces, nor RBAC objects.
    assert not can_i(alice, namespace="default", verb="list", resource="pods").allowed
    assert not can_i(
        alice,
        namespace=kube_namespace,
        verb="create",
        group="rbac.authorization.k8s.io",
        resource="rolebindings",
    ).allowed
    assert can_i(
        alice, namespace=kube_namespace, verb="create", resource="pods", subresource="portforward"
    ).allowed


def test_groups_service_accounts_and_resource_names(
    admin: client.ApiClient, kubesim: Kubesim, kube_namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(
        kube_namespace,
        {
            "metadata": {"name": "one-secret"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": ["conn"],
                    "verbs": ["get"],
                },
                {"apiGroups": [""], "resources": ["pods/log", "*/status"], "verbs": ["get"]},
            ],
        },
    )
    bind(
        admin,
        kube_namespace,
        "team",
        "one-secret",
        {"kind": "Group", "name": "team-b"},
        kind="Role",
    )
    sa_user = f"system:serviceaccount:{kube_namespace}:runner"
    bind(
        admin,
        kube_namespace,
        "sa",
        "view",
        {"kind": "ServiceAccount", "name": "runner", "namespace": kube_namespace},
    )
    with api_client(kubesim.new_user("bob", ["team-b"])) as bob:
        assert can_i(
            bob, namespace=kube_namespace, verb="get", resource="secrets", name="conn"
        ).allowed
        assert not can_i(
            bob, namespace=kube_namespace, verb="get", resource="secrets", name="other"
        ).allowed
        assert not can_i(bob, namespace=kube_namespace, verb="list", resource="secrets").allowed
        assert can_i(
            bob, namespace=kube_namespace, verb="get", resource="pods", subresource="log"
        ).allowed
        assert can_i(
            bob, namespace=kube_namespace, verb="get", resource="pods", subresource="status"
        ).allowed
        assert not can_i(bob, namespace=kube_namespace, verb="get", resource="pods").allowed
    with api_client(kubesim.new_user(sa_user, ["system:serviceaccounts"])) as robot:
        allowed = can_i(robot, namespace=kube_namespace, verb="watch", resource="pods")
        assert allowed.allowed
        assert allowed.reason == (
            f'RBAC: allowed by RoleBinding "sa/{kube_namespace}" of ClusterRole "view" to '
            f'ServiceAccount "runner/{kube_namespace}"'
        )
        assert not can_i(robot, namespace=kube_namespace, verb="get", resource="secrets").allowed


def test_discovery_and_version_are_open_to_every_user(alice: client.ApiClient) -> None:
    assert client.VersionApi(alice).get_code().git_version.startswith("v1.35")
    groups = client.ApisApi(alice).get_api_versions()
    assert "authorization.k8s.io" in {group.name for group in groups.groups}
    resources = client.CoreV1Api(alice).get_api_resources()
    names = {r.name: r for r in resources.resources}
    assert names["pods/portforward"].verbs == ["create", "get"]
    assert names["pods"].short_names == ["po"]


def test_websocket_upgrade_needs_create_as_well_as_get(
    admin: client.ApiClient, kubesim: Kubesim, kube_namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(
        kube_namespace,
        {
            "metadata": {"name": "get-only"},
            "rules": [{"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get"]}],
        },
    )
    bind(admin, kube_namespace, "carol", "get-only", {"kind": "User", "name": "carol"}, kind="Role")
    config = yaml.safe_load(kubesim.new_user("carol").read_text())
    token = config["users"][0]["user"]["token"]
    url = (
        kubesim.server.replace("https://", "wss://")
        + f"/api/v1/namespaces/{kube_namespace}/pods/kernel/portforward?ports=8888"
    )
    ca = yaml.safe_load(kubesim.kubeconfig.read_text())["clusters"][0]["cluster"]
    import base64

    context = ssl.create_default_context(
        cadata=base64.b64decode(ca["certificate-authority-data"]).decode()
    )
    with pytest.raises(websocket.WebSocketBadStatusException) as raised:
        websocket.create_connection(
            url,
            header=[f"Authorization: Bearer {token}"],
            subprotocols=["v4.channel.k8s.io"],
            sslopt={"context": context},
            timeout=10,
        )
    assert raised.value.status_code == 403
    body = json.loads(raised.value.resp_body)
    assert body["message"] == (
        'pods "kernel" is forbidden: User "carol" cannot create resource "pods/portforward" '
        f'in API group "" in the namespace "{kube_namespace}"'
    )
