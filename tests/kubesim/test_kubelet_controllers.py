"""DaemonSet and Job controllers, and the garbage collector behind them."""

from __future__ import annotations

from typing import Any

from tests.kubesim import resources
from tests.kubesim.kubelet_fixtures import Cluster, cluster, wait_for
from tests.kubesim.store import Obj

__all__ = ["cluster"]


def template(script: str, **spec: Any) -> Obj:
    return {
        "metadata": {"labels": {"app": "x"}},
        "spec": {
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script]}],
            "terminationGracePeriodSeconds": 0,
            **spec,
        },
    }


def pods_of(cluster: Cluster, uid: str) -> list[Obj]:
    pods, _ = cluster.store.list(resources.PODS, "default")
    return [
        p for p in pods if any(r["uid"] == uid for r in p["metadata"].get("ownerReferences", []))
    ]


def status_is(**expected: Any) -> Any:
    def check(obj: Obj | None) -> bool:
        status = (obj or {}).get("status") or {}
        return all(status.get(key) == value for key, value in expected.items())

    return check


async def test_daemonset_runs_a_pod_per_eligible_node_and_rolls(cluster: Cluster) -> None:
    ds = cluster.store.create(
        resources.DAEMONSETS,
        {
            "metadata": {"name": "prepull", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template("sleep 60")},
        },
    )
    one = status_is(
        desiredNumberScheduled=1, numberReady=1, updatedNumberScheduled=1, currentNumberScheduled=1
    )
    done = await wait_for(cluster.store, resources.DAEMONSETS, "default", "prepull", one)
    assert done is not None and done["status"]["observedGeneration"] == 1
    (pod,) = pods_of(cluster, ds["metadata"]["uid"])
    assert pod["spec"]["nodeName"] == "kubesim-cpu"  # the GPU node's taint is not tolerated
    assert pod["metadata"]["labels"]["app"] == "x"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"

    def tolerate_gpus(obj: Obj) -> None:
        obj["spec"]["template"] = template(
            "sleep 61", tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}]
        )

    cluster.store.mutate(resources.DAEMONSETS, "default", "prepull", tolerate_gpus)
    two = status_is(
        desiredNumberScheduled=2, numberReady=2, updatedNumberScheduled=2, observedGeneration=2
    )
    await wait_for(cluster.store, resources.DAEMONSETS, "default", "prepull", two)
    pods = pods_of(cluster, ds["metadata"]["uid"])
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["kubesim-cpu", "kubesim-gpu"]
    assert pod["metadata"]["name"] not in {p["metadata"]["name"] for p in pods}

    cluster.store.delete(resources.DAEMONSETS, "default", "prepull")
    for p in pods:
        await wait_for(
            cluster.store, resources.PODS, "default", p["metadata"]["name"], lambda o: o is None
        )


async def test_job_completes(cluster: Cluster) -> None:
    job = cluster.store.create(
        resources.JOBS,
        {
            "metadata": {"name": "build", "namespace": "default"},
            "spec": {"completions": 2, "template": template("echo built", restartPolicy="Never")},
        },
    )
    done = await wait_for(
        cluster.store, resources.JOBS, "default", "build", status_is(succeeded=2, active=0)
    )
    assert done is not None
    (condition,) = done["status"]["conditions"]
    assert (condition["type"], condition["status"]) == ("Complete", "True")
    assert done["status"]["startTime"] and done["status"]["completionTime"]
    pods = pods_of(cluster, job["metadata"]["uid"])
    assert len(pods) == 2 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert pods[0]["metadata"]["labels"]["job-name"] == "build"


async def test_job_fails_after_backoff_limit(cluster: Cluster) -> None:
    cluster.store.create(
        resources.JOBS,
        {
            "metadata": {"name": "broken", "namespace": "default"},
            "spec": {"backoffLimit": 1, "template": template("exit 1", restartPolicy="Never")},
        },
    )

    def failed(obj: Obj | None) -> bool:
        return any(
            c["type"] == "Failed" for c in ((obj or {}).get("status") or {}).get("conditions", [])
        )

    done = await wait_for(cluster.store, resources.JOBS, "default", "broken", failed)
    assert done is not None and done["status"]["failed"] == 2
    condition = done["status"]["conditions"][-1]
    assert (condition["reason"], condition["message"]) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )


async def test_a_pods_secret_goes_with_the_pod(cluster: Cluster) -> None:
    # A pod that no node takes: it runs no process, so its deletion is immediate.
    pod = cluster.create_pod(
        {
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "60"]}],
            "nodeSelector": {"kubesim.test/no-such-node": "true"},
        },
        name="owner",
    )
    reference = {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": pod["metadata"]["uid"]}
    cluster.store.create(
        resources.SECRETS,
        {"metadata": {"name": "owned", "namespace": "default", "ownerReferences": [reference]}},
    )
    cluster.store.create(resources.SECRETS, {"metadata": {"name": "free", "namespace": "default"}})
    # An ownerReference to a pod that is not there (any more) is collected at once.
    stale = {**reference, "uid": "00000000-0000-0000-0000-000000000000"}
    cluster.store.create(
        resources.SECRETS,
        {"metadata": {"name": "stale", "namespace": "default", "ownerReferences": [stale]}},
    )
    gone = lambda obj: obj is None  # noqa: E731
    await wait_for(cluster.store, resources.SECRETS, "default", "stale", gone)
    assert cluster.store.try_get(resources.SECRETS, "default", "owned") is not None

    await cluster.delete_pod("owner", grace=0)
    await wait_for(cluster.store, resources.SECRETS, "default", "owned", gone)
    assert cluster.store.try_get(resources.SECRETS, "default", "free") is not None
