"""The pre-puller against kubesim: created, followed to every node, updated, failing, removed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jkctl import paths
from jkctl.errors import KubeNotFound, PrepullError
from jkctl.kernels.specs import KernelSpecSource
from jkctl.kube.client import KubeClient
from jkctl.kube.login import kubeconfig_login
from jkctl.kube.podconfig import PodConfig, parse_pod_config
from jkctl.kube.prepull import (
    PrepullProgress,
    apply_prepull,
    daemonset_manifest,
    plan_prepull,
    remove_prepull,
    wait_prepulled,
)
from jkctl.kube.resources import DAEMONSETS
from tests.kubesim.fixture import Kubesim

pytestmark = pytest.mark.kubesim

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture
async def kube(kubesim: Kubesim) -> AsyncIterator[KubeClient]:
    async with KubeClient(kubeconfig_login(kubeconfig=kubesim.kubeconfig)) as client:
        yield client


def bundled_configs() -> dict[str, PodConfig]:
    specs = KernelSpecSource(dirs=(paths.bundled("kernel-templates"),)).all()
    return {name: spec.pod for name, spec in specs.items()}


def test_the_plan_pulls_each_image_once_with_the_specs_tolerations() -> None:
    plan = plan_prepull(bundled_configs())
    assert [entry.image for entry in plan.images] == [
        "quay.io/jupyter/base-notebook:2024-12-02",
        "quay.io/jupyter/r-notebook:2024-12-02",
    ]
    assert "python3-gpu" in plan.images[0].kernelspecs
    assert plan.tolerations == (GPU_TOLERATION,)
    manifest = daemonset_manifest(plan, namespace="geo")
    pod = manifest["spec"]["template"]["spec"]
    assert [c["command"] for c in pod["initContainers"]] == [["/bin/sh", "-c", "true"]] * 2
    assert pod["tolerations"] == [GPU_TOLERATION]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "jkctl"
    for container in [*pod["initContainers"], *pod["containers"]]:
        assert container["resources"]["requests"] == {"cpu": "1m", "memory": "8Mi"}


def config(image: str, *tolerations: dict[str, str]) -> PodConfig:
    return parse_pod_config({"image": image, "tolerations": list(tolerations)}, source="test")


async def test_prepull_reaches_every_node_then_is_removed(
    kube: KubeClient, kubesim: Kubesim, kube_namespace: str
) -> None:
    plan = plan_prepull(bundled_configs())
    seen: list[PrepullProgress] = []
    kubesim.set_pull_delay(0.3)
    try:
        await apply_prepull(kube, plan, namespace=kube_namespace)
        final = await wait_prepulled(kube, plan, namespace=kube_namespace, on_progress=seen.append)
    finally:
        kubesim.set_pull_delay(0)
    # Both simulated nodes, the GPU one too: the pods tolerate its taint.
    assert final.done
    assert final.desired == 2
    assert {node.node for node in final.nodes} == {"kubesim-cpu", "kubesim-gpu"}
    assert all(node.ready and node.pulled == 2 and node.total == 2 for node in final.nodes)
    # On the way, nodes were seen pulling, and not done.
    assert any(node.pulling for progress in seen for node in progress.nodes)
    assert not any(progress.done for progress in seen[:-1])

    stored = await kube.get(DAEMONSETS, plan.name, namespace=kube_namespace)
    assert stored["metadata"]["labels"]["jkctl.io/component"] == "prepull"

    assert await remove_prepull(kube, namespace=kube_namespace)
    with pytest.raises(KubeNotFound):
        await kube.get(DAEMONSETS, plan.name, namespace=kube_namespace)
    assert not await remove_prepull(kube, namespace=kube_namespace)


async def test_prepull_is_updated_in_place_and_skips_untolerated_nodes(
    kube: KubeClient, kube_namespace: str
) -> None:
    first = plan_prepull({"a": config("registry.example.com/team/a:1")})
    await apply_prepull(kube, first, namespace=kube_namespace)
    done = await wait_prepulled(kube, first, namespace=kube_namespace, on_progress=lambda _: None)
    assert done.desired == 1  # the GPU node's taint keeps it off
    assert [node.node for node in done.nodes] == ["kubesim-cpu"]

    second = plan_prepull(
        {
            "a": config("registry.example.com/team/a:1"),
            "b": config("registry.example.com/team/b:1", GPU_TOLERATION),
        }
    )
    stored = await apply_prepull(kube, second, namespace=kube_namespace)
    assert stored["metadata"]["generation"] == 2
    done = await wait_prepulled(kube, second, namespace=kube_namespace, on_progress=lambda _: None)
    assert done.desired == 2
    assert all(node.pulled == 2 for node in done.nodes)


async def test_an_image_that_cannot_be_pulled_fails_fast_naming_it(
    kube: KubeClient, kubesim: Kubesim, kube_namespace: str
) -> None:
    broken = f"registry.example.com/team/{kube_namespace}:missing"
    kubesim.fail_images(broken)
    plan = plan_prepull({"ok": config("registry.example.com/team/ok:1"), "broken": config(broken)})
    await apply_prepull(kube, plan, namespace=kube_namespace)
    with pytest.raises(PrepullError) as raised:
        await wait_prepulled(kube, plan, namespace=kube_namespace, on_progress=lambda _: None)
    assert raised.value.message.startswith(
        f"Node kubesim-cpu cannot pre-pull: cannot pull {broken}: "
    )
    assert "ErrImagePull" in raised.value.message or "ImagePullBackOff" in raised.value.message
    assert raised.value.hint is not None and "--remove" in raised.value.hint
