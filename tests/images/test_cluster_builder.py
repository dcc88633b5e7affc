"""The cluster builder against kubesim: a Kaniko Job followed to success and to failure.

kubesim runs every image on the host's Python, so the Job's command is set
to tests/images/fake_kaniko.py, which takes Kaniko's arguments, checks the
mounted context and registry login, and prints Kaniko's log. The rest of the
Job (ConfigMap, volumes, arguments, Secret) is exactly what jkctl sends.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jkctl.errors import BuilderUnavailable, ImageBuildError, KubeNotFound, UsageError
from jkctl.images.builders import BuildRequest
from jkctl.images.cluster import ClusterBuilder, count_steps
from jkctl.images.context import write_build_context
from jkctl.images.envfile import load_environment_file
from jkctl.images.kernelspec import KernelOptions
from jkctl.kube.buildjob import KanikoSettings
from jkctl.kube.client import KubeClient
from jkctl.kube.login import kubeconfig_login
from jkctl.kube.resources import CONFIGMAPS, JOBS, SECRETS
from tests.images.fakes import DATA
from tests.images.test_builders import Recorder
from tests.kubesim.fixture import Kubesim

pytestmark = pytest.mark.kubesim

IMAGE = "registry.example.com/team/kernel-stats:1"
FAKE_KANIKO = KanikoSettings(
    image="registry.example.com/jkctl-test/kaniko:1",
    command=(sys.executable, str(Path(__file__).parent / "fake_kaniko.py")),
)


@pytest.fixture
async def kube(kubesim: Kubesim) -> AsyncIterator[KubeClient]:
    async with KubeClient(kubeconfig_login(kubeconfig=kubesim.kubeconfig)) as client:
        yield client


def request_for(tmp_path: Path, env_file: Path, *, push: bool = True) -> BuildRequest:
    env = load_environment_file(env_file)
    context = write_build_context(env, KernelOptions(image=IMAGE), tmp_path / "context")
    return BuildRequest(
        context_dir=context.directory, dockerfile=context.dockerfile, image=IMAGE, push=push
    )


def builder(kubesim: Kubesim, namespace: str, **overrides: object) -> ClusterBuilder:
    options: dict[str, object] = {
        "login": kubeconfig_login(kubeconfig=kubesim.kubeconfig),
        "namespace": namespace,
        "registry_secret": "regcred",
        "settings": FAKE_KANIKO,
        "label": "stats",
    }
    options.update(overrides)
    return ClusterBuilder(**options)  # type: ignore[arg-type]


async def registry_secret(kube: KubeClient, namespace: str) -> None:
    config = {"auths": {"registry.example.com": {"auth": base64.b64encode(b"u:p").decode()}}}
    await kube.create(
        SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
        },
        namespace=namespace,
    )


async def leftovers(kube: KubeClient, namespace: str) -> tuple[list[str], list[str]]:
    jobs = await kube.list(JOBS, namespace=namespace)
    maps = await kube.list(CONFIGMAPS, namespace=namespace, label_selector="jkctl.io/build")
    return (
        [job["metadata"]["name"] for job in jobs["items"]],
        [cm["metadata"]["name"] for cm in maps["items"]],
    )


async def test_a_build_job_runs_to_success_with_its_steps(
    kube: KubeClient, kubesim: Kubesim, kube_namespace: str, tmp_path: Path
) -> None:
    await registry_secret(kube, kube_namespace)
    request = request_for(tmp_path, DATA / "plain.yml")
    progress = Recorder()
    await builder(kubesim, kube_namespace).run(request, progress)

    ((phase, shown),) = progress.phases
    assert phase == "build and push"
    assert shown.startswith(f"Kaniko Job {kube_namespace}/jkctl-build-stats-")
    total = count_steps(request.dockerfile)
    assert total is not None and total > 5
    assert [step.number for step in progress.steps] == list(range(1, total + 1))
    assert all(step.total == total for step in progress.steps)
    create = next(step for step in progress.steps if "micromamba create" in step.title)
    assert create.label().startswith(f"step {create.number}/{total}: RUN ")
    assert f'level=info msg="Pushed {IMAGE}"' in progress.lines
    # The Job stays for its TTL (its log is useful); the context's ConfigMap is gone.
    jobs, configmaps = await leftovers(kube, kube_namespace)
    assert len(jobs) == 1 and configmaps == []


async def test_a_failing_build_reports_the_failing_step_only(
    kube: KubeClient, kubesim: Kubesim, kube_namespace: str, tmp_path: Path
) -> None:
    failing = tmp_path / "environment.yml"
    failing.write_text("name: stats\ndependencies:\n  - python=3.12\n  - does-not-exist\n")
    request = request_for(tmp_path, failing, push=False)
    with pytest.raises(ImageBuildError) as raised:
        await builder(kubesim, kube_namespace, registry_secret=None).run(request, Recorder())
    error = raised.value
    assert error.message.startswith("the cluster build failed at step ")
    assert "RUN PIP_NO_CACHE_DIR=1 micromamba create" in error.message
    assert error.message.endswith("(exit code 1).")
    assert error.context is not None
    assert "Could not solve for environment specs" in error.context
    assert "does-not-exist does not exist" in error.context
    assert "output of USER root" not in error.context  # other steps' output stays out
    assert error.hint is not None
    assert f"kubectl -n {kube_namespace} logs job/jkctl-build-stats-" in error.hint
    jobs, configmaps = await leftovers(kube, kube_namespace)
    assert len(jobs) == 1 and configmaps == []


async def test_a_missing_registry_secret_is_refused_before_anything_is_created(
    kube: KubeClient, kubesim: Kubesim, kube_namespace: str, tmp_path: Path
) -> None:
    request = request_for(tmp_path, DATA / "plain.yml")
    with pytest.raises(UsageError) as raised:
        await builder(kubesim, kube_namespace).run(request, Recorder())
    assert raised.value.message == (
        f"--registry-secret regcred: there is no Secret regcred in namespace {kube_namespace}."
    )
    assert await leftovers(kube, kube_namespace) == ([], [])


async def test_a_builder_image_that_cannot_be_pulled_is_said_and_cleaned_up(
    kube: KubeClient, kubesim: Kubesim, kube_namespace: str, tmp_path: Path
) -> None:
    missing = f"registry.example.com/jkctl-test/{kube_namespace}:missing"
    kubesim.fail_images(missing)
    settings = KanikoSettings(image=missing, command=FAKE_KANIKO.command)
    request = request_for(tmp_path, DATA / "plain.yml", push=False)
    with pytest.raises(BuilderUnavailable) as raised:
        await builder(kubesim, kube_namespace, registry_secret=None, settings=settings).run(
            request, Recorder()
        )
    assert raised.value.message.startswith(
        f"the cluster cannot pull the builder image {missing} (ErrImagePull)"
    ) or raised.value.message.startswith(
        f"the cluster cannot pull the builder image {missing} (ImagePullBackOff)"
    )
    jobs, configmaps = await leftovers(kube, kube_namespace)
    assert configmaps == []
    for name in jobs:  # deleted; its deletion may still be finishing
        with pytest.raises(KubeNotFound):
            await kube.get(JOBS, name, namespace=kube_namespace)


async def test_a_build_pod_that_does_not_start_in_time_is_given_up_and_removed(
    kube: KubeClient, kubesim: Kubesim, kube_namespace: str, tmp_path: Path
) -> None:
    slow = f"registry.example.com/jkctl-test/{kube_namespace}:slow"
    settings = KanikoSettings(image=slow, command=FAKE_KANIKO.command, start_seconds=0.5)
    request = request_for(tmp_path, DATA / "plain.yml", push=False)
    kubesim.set_pull_delay(5)
    try:
        with pytest.raises(ImageBuildError) as raised:
            await builder(kubesim, kube_namespace, registry_secret=None, settings=settings).run(
                request, Recorder()
            )
    finally:
        kubesim.set_pull_delay(0)
    assert raised.value.message.startswith(f"the build Job {kube_namespace}/jkctl-build-stats-")
    assert raised.value.message.endswith("did not start a builder within 0.5 seconds.")
    assert raised.value.hint is not None and "kubectl" in raised.value.hint
    jobs, configmaps = await leftovers(kube, kube_namespace)
    assert configmaps == []
    for name in jobs:
        with pytest.raises(KubeNotFound):
            await kube.get(JOBS, name, namespace=kube_namespace)
