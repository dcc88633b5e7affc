"""A quota refusal in the team's words, and usage from quota status (no API server needed)."""

from __future__ import annotations

from typing import Any

from jkctl.errors import QuotaExceeded
from jkctl.kube.quota import explain_quota_exceeded, usage_from_quotas
from jkctl.kube.status import Action, error_from_status


def refusal(requested: str, used: str, limited: str) -> QuotaExceeded:
    """The error jkctl's client raises for the API server's quota 403."""
    message = (
        'pods "k-9" is forbidden: exceeded quota: jkctl-team, '
        f"requested: {requested}, used: {used}, limited: {limited}"
    )
    error = error_from_status(
        {"kind": "Status", "code": 403, "reason": "Forbidden", "message": message},
        action=Action(verb="create", resource="pods", name="k-9", namespace="geo"),
        server="https://k8s",
        context="geo",
    )
    assert isinstance(error, QuotaExceeded)
    return error


def quota(hard: dict[str, str], used: dict[str, str], team: str = "geo") -> dict[str, Any]:
    return {
        "metadata": {"name": "jkctl-team", "labels": {"jkctl.io/team": team}},
        "spec": {"hard": hard},
        "status": {"hard": hard, "used": used},
    }


def test_cpu_in_the_issue_s_words() -> None:
    error = refusal("requests.cpu=8", "requests.cpu=60", "requests.cpu=64")
    explained = explain_quota_exceeded(error, [quota({}, {})], namespace="geo-ns")
    assert explained.message == "team geo has 60 of 64 CPUs in use; this kernel asks for 8"
    assert explained.context == error.context
    assert explained.status is error.status


def test_memory_gpus_and_kernels_and_limits_only_when_requests_fit() -> None:
    error = refusal(
        "limits.cpu=8,limits.memory=8Gi,requests.memory=8Gi,requests.nvidia.com/gpu=1,pods=1",
        "limits.cpu=60,limits.memory=250Gi,requests.memory=250Gi,requests.nvidia.com/gpu=4,pods=40",
        "limits.cpu=64,limits.memory=256Gi,requests.memory=256Gi,requests.nvidia.com/gpu=4,pods=40",
    )
    assert explain_quota_exceeded(error, [], namespace="geo").message == (
        "team geo has 250 GiB of 256 GiB memory in use; this kernel asks for 8 GiB; "
        "team geo has 4 of 4 GPUs in use; this kernel asks for 1; "
        "team geo has 40 of 40 kernels running; this kernel would be one more; "
        "team geo has 60 of 64 CPUs in use, counting limits; this kernel's limit is 8"
    )


def test_other_forbidden_errors_pass_through() -> None:
    error = QuotaExceeded("something else", status={"message": "no quota words here"})
    assert explain_quota_exceeded(error, [], namespace="geo") is error


def test_usage_takes_the_tightest_quota_and_says_what_would_not_fit() -> None:
    usage = usage_from_quotas(
        [
            quota({"requests.cpu": "64", "requests.memory": "256Gi"}, {"requests.cpu": "60"}),
            quota({"requests.cpu": "100", "pods": "40"}, {"requests.cpu": "98", "pods": "3"}),
        ],
        namespace="geo",
    )
    cpu = usage.line("cpu")
    assert cpu is not None and (cpu.used, cpu.hard) == (98, 100)
    assert (
        usage.summary() == "team geo: 98 of 100 CPUs, 0 of 256 GiB memory, 3 of 40 kernels in use"
    )
    assert usage.shortfalls(requests={"cpu": "1", "memory": "4Gi"}) == []
    assert usage.shortfalls(requests={}, limits={"cpu": "4", "memory": "300Gi"}) == [
        "team geo has 98 of 100 CPUs in use; this kernel asks for 4",
        "team geo has 0 of 256 GiB memory in use; this kernel asks for 300 GiB",
    ]
    assert usage_from_quotas([], namespace="lab").summary() == "team lab: no quota"
