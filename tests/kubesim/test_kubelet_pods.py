"""The kubelet's pod lifecycle, driven in-process on a Store: status, events, logs, deletion."""

from __future__ import annotations

import asyncio
import base64
import os
import time

import pytest

from tests.kubesim import resources
from tests.kubesim.kubelet_fixtures import (
    Cluster,
    cluster,
    phase_is,
    pid_alive,
    read_log,
    running,
    scheduling,
    sh,
    wait_for,
    wait_for_log,
    waiting_reason,
)
from tests.kubesim.status import ApiError
from tests.kubesim.store import Obj

__all__ = ["cluster"]


async def test_pod_runs_with_status_events_and_logs(cluster: Cluster) -> None:
    cluster.create_pod({"containers": [sh("echo hello; echo oops >&2; sleep 30")]}, name="p")
    pod = await running(cluster, "p")
    status = pod["status"]
    assert status["podIP"].startswith("10.244.") and status["hostIP"].startswith("172.18.0.")
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled",
    ]  # fmt: skip
    assert all(c["status"] == "True" for c in status["conditions"])
    (container,) = status["containerStatuses"]
    assert container["ready"] and container["started"] and container["restartCount"] == 0
    assert container["image"] == "docker.io/library/busybox:1.36"
    assert container["imageID"].startswith("docker.io/library/busybox@sha256:")
    assert container["containerID"].startswith("containerd://")
    assert "startedAt" in container["state"]["running"]
    assert status["qosClass"] == "BestEffort"
    reasons = [reason for _, reason, _ in cluster.events("p")]
    assert reasons == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    messages = {reason: message for _, reason, message in cluster.events("p")}
    assert messages["Scheduled"] == f"Successfully assigned default/p to {pod['spec']['nodeName']}"
    assert messages["Created"] == "Created container main"
    assert messages["Pulled"].startswith('Successfully pulled image "busybox:1.36" in ')

    await wait_for_log(cluster, "p", b"hello\n", b"oops\n")  # two pipes: no order between them
    stamped = await read_log(cluster, "p", timestamps=True, tail_lines=1)
    assert stamped.endswith(b"Z oops\n") or stamped.endswith(b"Z hello\n")
    with pytest.raises(ApiError) as raised:
        cluster.kubelet.log_stream(
            "default",
            "p",
            container=None,
            follow=False,
            tail_lines=None,
            previous=True,
            timestamps=False,
        )
    assert raised.value.code == 400
    assert raised.value.message == 'previous terminated container "main" in pod "p" not found'


async def test_log_container_selection_errors(cluster: Cluster) -> None:
    cluster.create_pod(
        {
            "containers": [sh("sleep 30"), sh("sleep 30", name="side")],
            "nodeSelector": {"none": "x"},
        },
        name="two",
    )
    with pytest.raises(ApiError) as raised:
        cluster.kubelet.log_stream(
            "default",
            "two",
            container=None,
            follow=False,
            tail_lines=None,
            previous=False,
            timestamps=False,
        )
    assert (
        raised.value.message
        == "a container name must be specified for pod two, choose one of: [main side]"
    )
    with pytest.raises(ApiError) as raised:
        cluster.kubelet.log_stream(
            "default",
            "two",
            container="nope",
            follow=False,
            tail_lines=None,
            previous=False,
            timestamps=False,
        )
    assert raised.value.message == "container nope is not valid for pod two"
    cluster.kubelet.set_pull_delay(30)
    cluster.create_pod({"containers": [sh("sleep 30")]}, name="slow")
    await wait_for(
        cluster.store,
        resources.PODS,
        "default",
        "slow",
        lambda p: bool(p and p["spec"].get("nodeName")),
    )
    await wait_for(
        cluster.store,
        resources.PODS,
        "default",
        "slow",
        lambda p: waiting_reason(p) == "ContainerCreating",
    )
    with pytest.raises(ApiError) as raised:
        cluster.kubelet.log_stream(
            "default",
            "slow",
            container=None,
            follow=False,
            tail_lines=None,
            previous=False,
            timestamps=False,
        )
    assert (
        raised.value.message
        == 'container "main" in pod "slow" is waiting to start: ContainerCreating'
    )


async def test_unknown_image_backs_off(cluster: Cluster) -> None:
    cluster.kubelet.fail_images("example.com/nosuch:1")
    cluster.create_pod(
        {"containers": [{"name": "main", "image": "example.com/nosuch:1"}]}, name="bad"
    )
    await wait_for(
        cluster.store,
        resources.PODS,
        "default",
        "bad",
        lambda p: waiting_reason(p) == "ErrImagePull",
    )
    pod = await wait_for(
        cluster.store,
        resources.PODS,
        "default",
        "bad",
        lambda p: waiting_reason(p) == "ImagePullBackOff",
    )
    assert pod is not None and pod["status"]["phase"] == "Pending"
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["message"] == 'Back-off pulling image "example.com/nosuch:1"'
    events = cluster.events("bad")
    assert ("Warning", "Failed", "Error: ErrImagePull") in events
    assert ("Normal", "BackOff", 'Back-off pulling image "example.com/nosuch:1"') in events
    assert ("Warning", "Failed", "Error: ImagePullBackOff") in events
    assert (
        "Warning",
        "Failed",
        'Failed to pull image "example.com/nosuch:1": rpc error: code = NotFound desc = failed to '
        'pull and unpack image "example.com/nosuch:1": failed to resolve reference '
        '"example.com/nosuch:1": example.com/nosuch:1: not found',
    ) in events
    with pytest.raises(ApiError) as raised:
        cluster.kubelet.log_stream(
            "default",
            "bad",
            container=None,
            follow=False,
            tail_lines=None,
            previous=False,
            timestamps=False,
        )
    assert "is waiting to start" in raised.value.message


async def test_never_pull_waits_for_the_image(cluster: Cluster) -> None:
    spec = {
        "containers": [{"name": "main", "image": "prepulled:1", "imagePullPolicy": "Never"}],
        "nodeSelector": {"kubernetes.io/hostname": "kubesim-cpu"},
    }
    cluster.create_pod(spec, name="never")
    await wait_for(
        cluster.store,
        resources.PODS,
        "default",
        "never",
        lambda p: waiting_reason(p) == "ErrImageNeverPull",
    )
    cluster.create_pod(
        {
            "containers": [{"name": "main", "image": "prepulled:1"}],
            "nodeSelector": {"kubernetes.io/hostname": "kubesim-cpu"},
        },
        name="puller",
    )
    await running(cluster, "never")
    node = cluster.store.get(resources.NODES, None, "kubesim-cpu")
    assert any(
        "docker.io/library/prepulled:1" in image["names"] for image in node["status"]["images"]
    )


async def test_too_big_stays_pending(cluster: Cluster) -> None:
    spec = {"containers": [sh("sleep 1", resources={"requests": {"memory": "1Ti", "cpu": "1"}})]}
    cluster.create_pod(spec, name="huge")
    message = (
        "0/2 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint "
        "{nvidia.com/gpu: present}. preemption: 0/2 nodes are available: 1 No preemption victims "
        "found for incoming pod, 1 Preemption is not helpful for scheduling."
    )

    def unschedulable(pod: Obj | None) -> bool:
        conditions = (pod or {}).get("status", {}).get("conditions", [])
        return any(
            c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conditions
        )

    pod = await wait_for(cluster.store, resources.PODS, "default", "huge", unschedulable)
    assert pod is not None and pod["status"]["phase"] == "Pending"
    assert pod["status"]["conditions"][-1]["message"] == message
    assert cluster.events("huge") == [("Warning", "FailedScheduling", message)]


async def test_gpu_pod_needs_a_toleration_and_waits_for_capacity(cluster: Cluster) -> None:
    gpu = {"limits": {"nvidia.com/gpu": "2"}}
    toleration = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    cluster.create_pod({"containers": [sh("sleep 30", resources=gpu)]}, name="no-toleration")
    cluster.create_pod(
        {"containers": [sh("sleep 30", resources=gpu)], "tolerations": toleration}, name="gpu-1"
    )
    first = await running(cluster, "gpu-1")
    assert first["spec"]["nodeName"] == "kubesim-gpu"
    cluster.create_pod(
        {"containers": [sh("sleep 30", resources=gpu)], "tolerations": toleration}, name="gpu-2"
    )
    await wait_for(
        cluster.store, resources.PODS, "default", "gpu-2", scheduling("Insufficient nvidia")
    )
    await cluster.delete_pod("gpu-1", grace=0)
    second = await running(cluster, "gpu-2")  # retried when the first one left, not by polling
    assert second["spec"]["nodeName"] == "kubesim-gpu"
    pending = cluster.store.get(resources.PODS, "default", "no-toleration")
    assert "nodeName" not in pending["spec"]


async def test_crash_loop_back_off(cluster: Cluster) -> None:
    cluster.create_pod({"containers": [sh("echo crashing; exit 1")]}, name="crash")

    def looping(pod: Obj | None) -> bool:
        return (
            waiting_reason(pod) == "CrashLoopBackOff"
            and pod is not None
            and pod["status"]["containerStatuses"][0]["restartCount"] >= 2
        )

    pod = await wait_for(cluster.store, resources.PODS, "default", "crash", looping)
    assert pod is not None and pod["status"]["phase"] == "Running"
    status = pod["status"]["containerStatuses"][0]
    last = status["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (1, "Error")
    assert status["state"]["waiting"]["message"].startswith("back-off ")
    uid = pod["metadata"]["uid"]
    assert (
        "Warning",
        "BackOff",
        f"Back-off restarting failed container main in pod crash_default({uid})",
    ) in cluster.events("crash")
    assert await read_log(cluster, "crash", previous=True) == b"crashing\n"


async def test_restart_policies(cluster: Cluster) -> None:
    cluster.create_pod({"containers": [sh("exit 0")], "restartPolicy": "OnFailure"}, name="ok")
    cluster.create_pod({"containers": [sh("exit 3")], "restartPolicy": "Never"}, name="fails")
    done = await wait_for(cluster.store, resources.PODS, "default", "ok", phase_is("Succeeded"))
    failed = await wait_for(cluster.store, resources.PODS, "default", "fails", phase_is("Failed"))
    assert (
        done
        and done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    )
    terminated = failed and failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated and (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert failed and failed["status"]["containerStatuses"][0]["restartCount"] == 0


async def test_graceful_delete_sends_sigterm_first(cluster: Cluster) -> None:
    script = "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.05; done"
    cluster.create_pod(
        {"containers": [sh(script)], "terminationGracePeriodSeconds": 30}, name="graceful"
    )
    pod = await running(cluster, "graceful")
    pid = cluster.kubelet._worker("default", "graceful").runners["main"].process.pid  # type: ignore[union-attr]
    assert pid is not None
    await wait_for_log(cluster, "graceful", b"ready\n")  # the trap is set: SIGTERM will reach it
    watch = cluster.store.watch(
        resources.PODS, "default", resource_version=pod["metadata"]["resourceVersion"]
    )
    await cluster.delete_pod("graceful")
    async with asyncio.timeout(10):
        async for event in watch:
            if event.type == "DELETED":
                final = event.object
                break
    watch.close()
    terminated = final["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert final["status"]["phase"] == "Succeeded"
    assert ("Normal", "Killing", "Stopping container main") in cluster.events("graceful")
    assert not pid_alive(pid)


async def test_grace_expires_then_sigkill(cluster: Cluster) -> None:
    cluster.create_pod({"containers": [sh("trap '' TERM; sleep 60 & wait")]}, name="stubborn")
    await running(cluster, "stubborn")
    await cluster.delete_pod("stubborn", grace=1)
    assert (
        await wait_for(cluster.store, resources.PODS, "default", "stubborn", lambda p: p is None)
        is None
    )


async def test_downward_api_env_and_volumes(cluster: Cluster) -> None:
    cluster.store.create(
        resources.SECRETS,
        {
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"token": base64.b64encode(b"s3cret").decode()},
        },
    )
    cluster.store.create(
        resources.CONFIGMAPS,
        {"metadata": {"name": "settings", "namespace": "default"}, "data": {"mode": "fast"}},
    )
    container = sh(
        "echo $POD $NS $NODE $TOKEN $MODE $(echo expanded); cat /cfg/mode; echo; pwd;"
        # the container reads its downward-API file as a lease watcher would
        """ while [ "$(cat /etc/podinfo/annotations)" != 'lease="2"' ]; do sleep 0.02; done;"""
        " echo renewed; sleep 30",
        env=[
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        ],
        workingDir="/work/dir",
        volumeMounts=[
            {"name": "info", "mountPath": "/etc/podinfo"},
            {"name": "cfg", "mountPath": "/cfg"},
            {"name": "scratch", "mountPath": "/scratch-space"},
        ],
    )
    spec = {
        "containers": [container],
        "volumes": [
            {
                "name": "info",
                "downwardAPI": {
                    "items": [
                        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}
                    ]
                },
            },
            {"name": "cfg", "configMap": {"name": "settings"}},
            {"name": "scratch", "emptyDir": {}},
        ],
    }
    cluster.create_pod(spec, name="dapi", annotations={"lease": "1"})
    pod = await running(cluster, "dapi")
    await wait_for_log(cluster, "dapi", b"/work/dir\n")
    log = await read_log(cluster, "dapi")
    node = pod["spec"]["nodeName"]
    assert log == f"dapi default {node} s3cret fast expanded\nfast\n/work/dir\n".encode()
    volume = cluster.state_dir / "pods" / pod["metadata"]["uid"] / "volumes" / "info"
    assert (volume / "annotations").read_text() == 'lease="1"'
    assert (volume / "..data").is_symlink()

    def renew(obj: Obj) -> None:
        obj["metadata"]["annotations"]["lease"] = "2"

    cluster.store.mutate(resources.PODS, "default", "dapi", renew)
    await wait_for_log(cluster, "dapi", b"renewed\n")
    assert (volume / "annotations").read_text() == 'lease="2"'
    assert not_on_host("/etc/podinfo", "/scratch-space", "/work/dir")


def not_on_host(*paths: str) -> bool:
    return not any(os.path.exists(path) for path in paths)


async def test_missing_secret_waits_then_starts(cluster: Cluster) -> None:
    container = sh(
        "sleep 30",
        env=[{"name": "T", "valueFrom": {"secretKeyRef": {"name": "later", "key": "k"}}}],
    )
    cluster.create_pod({"containers": [container]}, name="cfg")
    pod = await wait_for(
        cluster.store,
        resources.PODS,
        "default",
        "cfg",
        lambda p: waiting_reason(p) == "CreateContainerConfigError",
    )
    assert (
        pod
        and pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        == 'secret "later" not found'
    )
    cluster.store.create(
        resources.SECRETS,
        {"metadata": {"name": "later", "namespace": "default"}, "data": {"k": "eA=="}},
    )
    await running(cluster, "cfg")


async def test_active_deadline(cluster: Cluster) -> None:
    # pid 1 stops on SIGTERM: the test waits for the deadline, not for a grace period too.
    stops = sh("trap 'exit 0' TERM; sleep 60 & wait")
    created = time.monotonic()
    cluster.create_pod({"containers": [stops], "activeDeadlineSeconds": 1}, name="deadline")
    pod = await wait_for(cluster.store, resources.PODS, "default", "deadline", phase_is("Failed"))
    assert time.monotonic() - created >= 1.0  # a whole second, not to the next full second
    assert pod and (pod["status"]["reason"], pod["status"]["message"]) == (
        "DeadlineExceeded", "Pod was active on the node longer than the specified deadline",
    )  # fmt: skip


async def test_init_containers_run_first(cluster: Cluster) -> None:
    shared = [{"name": "work", "mountPath": "/shared"}]
    spec = {
        "initContainers": [sh("echo prepared > /shared/flag", name="prepare", volumeMounts=shared)],
        "containers": [sh("cat /shared/flag; sleep 30", volumeMounts=shared)],
        "volumes": [{"name": "work", "emptyDir": {}}],
    }
    cluster.create_pod(spec, name="init")
    await wait_for_log(cluster, "init", b"prepared\n")
    pod = cluster.store.get(resources.PODS, "default", "init")
    (init,) = pod["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert [c["status"] for c in pod["status"]["conditions"][:2]] == ["True", "True"]


async def test_init_container_failure_fails_the_pod(cluster: Cluster) -> None:
    spec = {
        "initContainers": [sh("exit 2", name="prepare")],
        "containers": [sh("sleep 30")],
        "restartPolicy": "Never",
    }
    cluster.create_pod(spec, name="init-fails")
    pod = await wait_for(cluster.store, resources.PODS, "default", "init-fails", phase_is("Failed"))
    assert pod is not None
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    initialized = pod["status"]["conditions"][1]
    assert (initialized["type"], initialized["status"], initialized["reason"]) == (
        "Initialized",
        "False",
        "ContainersNotInitialized",
    )


async def test_missing_executable_is_a_start_error(cluster: Cluster) -> None:
    spec = {"containers": [{"name": "main", "image": "x", "command": ["no-such-tool"]}]}
    cluster.create_pod({**spec, "restartPolicy": "Never"}, name="typo")
    pod = await wait_for(cluster.store, resources.PODS, "default", "typo", phase_is("Failed"))
    terminated = pod and pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated and (terminated["exitCode"], terminated["reason"]) == (128, "StartError")
    assert terminated["message"].endswith(
        'exec: "no-such-tool": executable file not found in $PATH: unknown'
    )
    assert ("Warning", "Failed", f"Error: {terminated['message']}") in cluster.events("typo")
