"""Status -> jkctl error mapping: the type, the words a user reads, the raw Status kept."""

from __future__ import annotations

import json

import pytest

from jkctl import errors
from jkctl.kube.resources import PODS, SELF_SUBJECT_ACCESS_REVIEWS, Resource
from jkctl.kube.status import Action, Status, error_from_status, parse_status

CREATE_POD = Action(verb="create", resource="pods", name="k-1", namespace="geo")
SERVER = "https://k8s.example:6443"


def mapped(status: Status, action: Action = CREATE_POD) -> errors.KubeError:
    return error_from_status(status, action=action, server=SERVER, context="geo-ctx")


def test_forbidden_names_verb_resource_namespace_and_user() -> None:
    status: Status = {
        "kind": "Status",
        "code": 403,
        "reason": "Forbidden",
        "message": 'pods is forbidden: User "alice" cannot create resource "pods" in API group "" '
        'in the namespace "geo"',
    }
    error = mapped(status, Action(verb="create", resource="pods", namespace="geo"))
    assert type(error) is errors.KubeForbidden
    assert error.message == (
        'Kubernetes refused to create pods in namespace "geo": user "alice" lacks permission'
    )
    assert error.hint is not None and "kubectl auth can-i create pods -n geo" in error.hint
    assert error.status is status
    assert error.context == status["message"]


def test_forbidden_subresource_uses_what_the_server_checked() -> None:
    status: Status = {
        "code": 403,
        "reason": "Forbidden",
        "message": 'pods "k-1" is forbidden: User "system:serviceaccount:geo:bob" cannot create '
        'resource "pods/portforward" in API group "" in the namespace "geo"',
    }
    action = Action(
        verb="get", resource="pods", subresource="portforward", name="k-1", namespace="geo"
    )
    error = mapped(status, action)
    assert error.message == (
        'Kubernetes refused to create pods/portforward "k-1" in namespace "geo": '
        'user "system:serviceaccount:geo:bob" lacks permission'
    )


def test_quota_exceeded_is_its_own_forbidden() -> None:
    status: Status = {
        "code": 403,
        "reason": "Forbidden",
        "message": 'pods "k-1" is forbidden: exceeded quota: compute, requested: requests.cpu=8, '
        "used: requests.cpu=60, limited: requests.cpu=64",
    }
    error = mapped(status)
    assert type(error) is errors.QuotaExceeded
    assert isinstance(error, errors.KubeForbidden)
    assert 'ResourceQuota "compute"' in error.message
    assert "requested requests.cpu=8, used requests.cpu=60, limited requests.cpu=64" in (
        error.message
    )


def test_admission_refusal_quotes_the_reason() -> None:
    status: Status = {
        "code": 403,
        "reason": "Forbidden",
        "message": 'pods "k-1" is forbidden: violates PodSecurity "restricted:latest": '
        "runAsNonRoot != true",
    }
    error = mapped(status)
    assert type(error) is errors.KubeForbidden
    assert error.message == (
        'Kubernetes refused to create pods "k-1" in namespace "geo": '
        'violates PodSecurity "restricted:latest": runAsNonRoot != true'
    )


def test_not_found_and_missing_namespace() -> None:
    pod = mapped(
        {
            "code": 404,
            "reason": "NotFound",
            "message": 'pods "k-1" not found',
            "details": {"name": "k-1", "kind": "pods"},
        },
        Action(verb="get", resource="pods", name="k-1", namespace="geo"),
    )
    assert type(pod) is errors.KubeNotFound
    assert pod.message == 'Kubernetes has no pods "k-1" in namespace "geo"'
    namespace = mapped(
        {
            "code": 404,
            "reason": "NotFound",
            "message": 'namespaces "geo" not found',
            "details": {"name": "geo", "kind": "namespaces"},
        }
    )
    assert namespace.message == 'namespace "geo" does not exist'


def test_already_exists_and_conflict() -> None:
    exists = mapped(
        {
            "code": 409,
            "reason": "AlreadyExists",
            "message": 'pods "k-1" already exists',
            "details": {"name": "k-1", "kind": "pods"},
        }
    )
    assert type(exists) is errors.KubeConflict
    assert exists.message == 'pods "k-1" already exists in namespace "geo"'
    conflict = mapped(
        {"code": 409, "reason": "Conflict", "message": "the object has been modified"}
    )
    assert type(conflict) is errors.KubeConflict
    assert "changed by someone else" in conflict.message


def test_invalid_lists_the_causes() -> None:
    status: Status = {
        "code": 422,
        "reason": "Invalid",
        "message": 'Pod "k-1" is invalid: [spec.containers: Required value, metadata.name: bad]',
        "details": {
            "name": "k-1",
            "kind": "Pod",
            "causes": [
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value",
                    "field": "spec.containers",
                },
                {"reason": "FieldValueInvalid", "message": "bad", "field": "metadata.name"},
            ],
        },
    }
    error = mapped(status)
    assert type(error) is errors.KubeInvalid
    assert error.message == (
        'Kubernetes rejected Pod "k-1" as invalid: spec.containers: Required value; '
        "metadata.name: bad"
    )
    assert error.status is not None
    assert error.status["details"] == status["details"]


def test_unauthorized_names_server_and_context() -> None:
    error = mapped({"code": 401, "reason": "Unauthorized", "message": "Unauthorized"})
    assert type(error) is errors.KubeUnauthorized
    assert SERVER in error.message and '"geo-ctx"' in error.message


@pytest.mark.parametrize("reason", ["Expired", "Gone"])
def test_expired_and_gone(reason: str) -> None:
    error = mapped({"code": 410, "reason": reason, "message": "too old resource version: 1 (5)"})
    assert type(error) is errors.KubeGone


@pytest.mark.parametrize(
    ("code", "reason"),
    [(500, "InternalError"), (503, ""), (504, "Timeout"), (429, "TooManyRequests")],
)
def test_server_trouble_is_unavailable(code: int, reason: str) -> None:
    error = mapped({"code": code, "reason": reason, "message": "etcd is sad"})
    assert type(error) is errors.KubeUnavailable
    assert SERVER in error.message and "etcd is sad" in error.message


def test_unknown_refusal_keeps_the_http_code() -> None:
    error = mapped({"code": 415, "reason": "UnsupportedMediaType", "message": "bad type"})
    assert type(error) is errors.KubeError
    assert error.context == "HTTP 415 UnsupportedMediaType"


def test_parse_status_reads_json_and_makes_one_up_for_html() -> None:
    real = parse_status(404, json.dumps({"kind": "Status", "reason": "NotFound"}).encode())
    assert real == {"kind": "Status", "reason": "NotFound", "code": 404}
    made_up = parse_status(403, b"<html>Forbidden by proxy</html>")
    assert made_up["reason"] == "Forbidden"
    assert made_up["message"] == "<html>Forbidden by proxy</html>"
    assert isinstance(mapped(made_up), errors.KubeForbidden)
    assert parse_status(502, b"")["message"] == "HTTP 502"


def test_resource_paths() -> None:
    assert PODS.path(namespace="geo") == "/api/v1/namespaces/geo/pods"
    assert PODS.path(namespace=None) == "/api/v1/pods"
    assert (
        PODS.path(namespace="geo", name="k-1", subresource="portforward")
        == "/api/v1/namespaces/geo/pods/k-1/portforward"
    )
    assert (
        SELF_SUBJECT_ACCESS_REVIEWS.path(namespace="geo")
        == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    )
    jobs = Resource(group="batch", version="v1", plural="jobs")
    assert jobs.path(namespace="geo", name="j") == "/apis/batch/v1/namespaces/geo/jobs/j"
    assert jobs.api_version == "batch/v1"
    with pytest.raises(ValueError, match="subresource"):
        PODS.path(namespace="geo", subresource="log")
