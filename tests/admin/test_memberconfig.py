"""A member's kubeconfig (service-account token) works, with exactly the team's rights."""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from jkctl.admin.apply import Change
from jkctl.admin.memberconfig import member_kubeconfig, parse_expiration
from jkctl.admin.spec import TeamOptions, team_spec
from jkctl.admin.teams import create_team
from jkctl.errors import KubeForbidden, TeamNotFound, UsageError
from jkctl.kube.client import KubeClient
from jkctl.kube.login import KubeconfigLogin
from jkctl.kube.quota import team_usage
from jkctl.kube.resources import PODS
from tests.admin.conftest import client_for, kernel_pod
from tests.kubesim.conftest import api_client
from tests.kubesim.fixture import Kubesim

pytestmark = pytest.mark.kubesim

KUBECTL = Path("/usr/bin/kubectl")


@pytest.fixture
async def teams(admin_kube: KubeClient, team_names: Callable[[str], str]) -> tuple[str, str]:
    geo, bio = team_names("geo"), team_names("bio")
    for name in (geo, bio):
        await create_team(admin_kube, team_spec(name, TeamOptions(cpu="2", memory="2Gi")))
    return geo, bio


async def test_the_kubeconfig_works_for_the_team_and_nowhere_else(
    kubesim: Kubesim, admin_kube: KubeClient, teams: tuple[str, str], tmp_path: Path
) -> None:
    geo, bio = teams
    login = KubeconfigLogin(paths=(kubesim.kubeconfig,))
    before = datetime.datetime.now(datetime.UTC)
    made = await member_kubeconfig(
        admin_kube, login, team=geo, user="alice", expiration_seconds=7200
    )
    assert made.username == f"system:serviceaccount:{geo}:alice"
    assert [line.change for line in made.applied] == [Change.CREATED, Change.CREATED]
    lifetime = made.expires - before
    assert datetime.timedelta(seconds=7190) <= lifetime <= datetime.timedelta(seconds=7210)
    config = yaml.safe_load(made.text)
    assert config["current-context"] == f"alice@{geo}"
    assert config["contexts"][0]["context"]["namespace"] == geo
    assert set(config["clusters"][0]["cluster"]) == {"server", "certificate-authority-data"}
    path = tmp_path / "alice.kubeconfig"
    path.write_text(made.text)

    # jkctl's own client: the context's namespace is the team's.
    async with client_for(path) as kube:
        assert kube.namespace == geo
        await kube.create(PODS, kernel_pod("k-1"))
        assert (await team_usage(kube)).team == geo
        with pytest.raises(KubeForbidden):
            await kube.create(PODS, kernel_pod("k-1"), namespace=bio)

    # The kubernetes package.
    with api_client(path) as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_pod(geo, kernel_pod("k-2"))
        assert {pod.metadata.name for pod in core.list_namespaced_pod(geo).items} == {"k-1", "k-2"}
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod(bio, kernel_pod("k-2"))
        assert refused.value.status == 403

    # A second run reuses the ServiceAccount and its binding, with a fresh token.
    again = await member_kubeconfig(
        admin_kube, login, team=geo, user="alice", expiration_seconds=3600
    )
    assert [line.change for line in again.applied] == [Change.UNCHANGED, Change.UNCHANGED]
    assert again.text != made.text


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl is not installed")
async def test_kubectl_accepts_the_kubeconfig(
    kubesim: Kubesim, admin_kube: KubeClient, teams: tuple[str, str], tmp_path: Path
) -> None:
    geo, bio = teams
    made = await member_kubeconfig(
        admin_kube,
        KubeconfigLogin(paths=(kubesim.kubeconfig,)),
        team=geo,
        user="bob",
        expiration_seconds=parse_expiration("1h"),
    )
    path = tmp_path / "bob.kubeconfig"
    path.write_text(made.text)
    env = {**os.environ, "KUBECONFIG": str(path), "HOME": str(tmp_path)}

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KUBECTL), *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    for resource in ("pods", "pods/portforward", "secrets"):
        assert kubectl("auth", "can-i", "create", resource).stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "create", "pods", "-n", bio).stdout.strip() == "no"
    assert kubectl("auth", "can-i", "delete", "namespaces").stdout.strip() == "no"
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(kernel_pod("k-bob")))
    created = kubectl("create", "-f", str(manifest))
    assert created.stdout.strip() == "pod/k-bob created", created.stderr
    refused = kubectl("create", "-f", str(manifest), "-n", bio)
    assert refused.returncode != 0
    assert f'User "system:serviceaccount:{geo}:bob" cannot create resource "pods"' in (
        refused.stderr
    )


async def test_bad_requests(
    kubesim: Kubesim, admin_kube: KubeClient, team_names: Callable[[str], str]
) -> None:
    login = KubeconfigLogin(paths=(kubesim.kubeconfig,))
    with pytest.raises(TeamNotFound):
        await member_kubeconfig(
            admin_kube, login, team=team_names("none"), user="alice", expiration_seconds=3600
        )
    with pytest.raises(UsageError) as bad:
        await member_kubeconfig(
            admin_kube, login, team="geo", user="Alice@example.com", expiration_seconds=3600
        )
    assert bad.value.message == "--user Alice@example.com cannot name a ServiceAccount"
    with pytest.raises(UsageError) as short:
        parse_expiration("5m")
    assert short.value.message == (
        "--expiration 5m is shorter than the 10 minutes Kubernetes allows a token"
    )
    assert parse_expiration("30d") == 30 * 86400
