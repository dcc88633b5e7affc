"""The scheduler's filters and its FailedScheduling wording, as pure functions."""

from __future__ import annotations

from tests.kubesim.backoff import Backoff, go_duration
from tests.kubesim.nodes import NodeState, default_nodes
from tests.kubesim.scheduler import failure_message, filter_node, pod_requests
from tests.kubesim.store import Obj


def pod(**spec: object) -> Obj:
    container = {"name": "c", "resources": spec.pop("resources", {})}
    return {"metadata": {"name": "p"}, "spec": {"containers": [container], **spec}}


def nodes() -> tuple[Obj, Obj]:
    cpu, gpu = (NodeState(spec, i).render() for i, spec in enumerate(default_nodes()))
    return cpu, gpu


def test_requests_default_to_limits_and_take_the_largest_init_container() -> None:
    spec = pod(resources={"limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"}})
    spec["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "4"}}}]
    assert pod_requests(spec) == {"cpu": 4000, "memory": 2**30, "nvidia.com/gpu": 1}


def test_filters_in_plugin_order() -> None:
    cpu, gpu = nodes()
    assert filter_node(pod(), cpu, {}, 0) == []
    assert filter_node(pod(), gpu, {}, 0) == [
        "node(s) had untolerated taint {nvidia.com/gpu: present}"
    ]
    tolerant = pod(
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}], nodeSelector={"a": "b"}
    )
    assert filter_node(tolerant, gpu, {}, 0) == [
        "node(s) didn't match Pod's node affinity/selector"
    ]
    big = pod(resources={"requests": {"cpu": "9", "memory": "1Gi"}})
    assert filter_node(big, cpu, {}, 0) == ["Insufficient cpu"]
    assert filter_node(
        pod(resources={"requests": {"memory": "1Gi"}}), cpu, {"memory": 16 * 2**30}, 0
    ) == ["Insufficient memory"]
    assert filter_node(pod(), cpu, {}, 110) == ["Too many pods"]


def test_a_node_without_status_has_room_for_no_pod() -> None:
    # As a client may create it (kubectl create -f node.yaml): nothing allocatable.
    assert filter_node(pod(), {"metadata": {"name": "bare"}}, {}, 0) == ["Too many pods"]


def test_failed_scheduling_message() -> None:
    assert failure_message(2, {"a": ["Insufficient memory"], "b": ["Insufficient memory"]}) == (
        "0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes are available: "
        "2 No preemption victims found for incoming pod."
    )
    assert failure_message(
        3,
        {
            "a": ["Insufficient cpu", "Insufficient memory"],
            "b": ["node(s) didn't match Pod's node affinity/selector"],
            "c": ["node(s) didn't match Pod's node affinity/selector"],
        },
    ) == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 2 node(s) didn't "
        "match Pod's node affinity/selector. preemption: 0/3 nodes are available: 1 No preemption "
        "victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    )


def test_backoff_doubles_to_the_cap_and_prints_like_go() -> None:
    backoff = Backoff(base=10, cap=300)
    delays = [backoff.next("k", now=float(i)) for i in range(7)]
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    assert [go_duration(d) for d in (10, 80, 300, 0.345, 1.5)] == [
        "10s",
        "1m20s",
        "5m0s",
        "345ms",
        "1.5s",
    ]
    assert backoff.next("k", now=10_000.0) == 10  # quiet for twice the cap: starts over
