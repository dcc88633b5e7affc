"""Teams on kubesim: access, quota words, render == create, update, delete, missing rights."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from jkctl.admin import manifests
from jkctl.admin.apply import Change, resource_of
from jkctl.admin.spec import TeamOptions, team_spec
from jkctl.admin.teams import (
    create_team,
    delete_team,
    list_teams,
    plan_deletion,
    require_idle,
    update_team,
)
from jkctl.errors import (
    KubeForbidden,
    KubeNotFound,
    QuotaExceeded,
    TeamBusy,
    TeamExists,
    TeamNotFound,
)
from jkctl.kube.access import AccessCheck, missing_access
from jkctl.kube.client import KubeClient, PatchType
from jkctl.kube.objects import KubeObject
from jkctl.kube.quota import explain_quota_exceeded, humane_quota_error, team_usage
from jkctl.kube.resources import NAMESPACES, PODS, RESOURCE_QUOTAS, SECRETS
from tests.admin.conftest import client_for, kernel_pod, wait_running
from tests.kubesim.fixture import Kubesim

pytestmark = pytest.mark.kubesim

Names = Callable[[str], str]

# What `jkctl connect` checks before serving, and what a kernel needs.
CONNECT_CHECKS = [
    AccessCheck(verb="create", resource="pods"),
    AccessCheck(verb="create", resource="secrets"),
    AccessCheck(verb="create", resource="pods", subresource="portforward"),
    AccessCheck(verb="get", resource="pods", subresource="log"),
    AccessCheck(verb="list", resource="events"),
    AccessCheck(verb="list", resource="resourcequotas"),
]


def user(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


async def make_team(kube: KubeClient, name: str, **options: Any) -> None:
    options.setdefault("cpu", "2")
    options.setdefault("memory", "2Gi")
    await create_team(kube, team_spec(name, TeamOptions(**options)))


async def test_members_work_in_their_team_and_are_forbidden_in_the_other(
    kubesim: Kubesim, admin_kube: KubeClient, team_names: Names
) -> None:
    geo, bio = team_names("geo"), team_names("bio")
    alice, bob, bio_group = user("alice"), user("bob"), user("bio-people")
    await make_team(admin_kube, geo, members=[alice])
    await make_team(admin_kube, bio, groups=[bio_group])
    async with (
        client_for(kubesim.new_user(alice)) as as_alice,
        client_for(kubesim.new_user(bob, [bio_group])) as as_bob,
    ):
        # SelfSubjectAccessReview agrees with what the requests below find.
        assert await missing_access(as_alice, CONNECT_CHECKS, namespace=geo) == []
        assert await missing_access(as_alice, CONNECT_CHECKS, namespace=bio) == CONNECT_CHECKS
        assert await missing_access(as_bob, CONNECT_CHECKS, namespace=bio) == []

        await as_alice.create(PODS, kernel_pod("k-1"), namespace=geo)
        await as_alice.create(
            SECRETS, {"metadata": {"name": "k-1"}, "stringData": {"key": "x"}}, namespace=geo
        )
        await wait_running(as_alice, geo, "k-1")
        async with as_alice.websocket(
            PODS, "k-1", subresource="portforward", namespace=geo, params=[("ports", "8888")]
        ):
            pass
        await as_bob.create(PODS, kernel_pod("k-2"), namespace=bio)  # through the group
        await wait_running(as_bob, bio, "k-2")

        with pytest.raises(KubeForbidden) as refused:
            await as_alice.create(PODS, kernel_pod("k-3"), namespace=bio)
        assert not isinstance(refused.value, QuotaExceeded)
        assert refused.value.message == (
            f'Kubernetes refused to create pods "k-3" in namespace "{bio}": user "{alice}" lacks '
            "permission"
        )
        with pytest.raises(KubeForbidden):
            await as_alice.create(SECRETS, {"metadata": {"name": "s"}}, namespace=bio)
        with pytest.raises(KubeForbidden):
            async with as_alice.websocket(
                PODS, "k-2", subresource="portforward", namespace=bio, params=[("ports", "8888")]
            ):
                pass
        # Members cannot change their own share.
        with pytest.raises(KubeForbidden):
            await as_alice.patch(
                RESOURCE_QUOTAS,
                manifests.QUOTA,
                {"spec": {"hard": {"requests.cpu": "99"}}},
                namespace=geo,
            )


async def test_quota_exhaustion_is_said_in_the_teams_words(
    kubesim: Kubesim, admin_kube: KubeClient, team_names: Names
) -> None:
    team, carol = team_names("quota"), user("carol")
    await make_team(admin_kube, team, cpu="2", memory="2Gi", max_kernels=2, members=[carol])
    async with client_for(kubesim.new_user(carol)) as kube:
        await kube.create(PODS, kernel_pod("a", cpu="1500m", memory="256Mi"), namespace=team)

        async def refusal(pod: KubeObject) -> str:
            with pytest.raises(QuotaExceeded) as refused:
                await kube.create(PODS, pod, namespace=team)
            humane = await humane_quota_error(kube, refused.value, namespace=team)
            quotas = (await kube.list(RESOURCE_QUOTAS, namespace=team))["items"]
            explained = explain_quota_exceeded(refused.value, quotas, namespace=team)
            assert explained.message == humane.message
            assert humane.context == refused.value.context  # the server's words stay at hand
            assert humane.hint is not None and f"jkctl admin team update {team}" in humane.hint
            return humane.message

        assert await refusal(kernel_pod("b", cpu="1", memory="64Mi")) == (
            f"team {team} has 1.5 of 2 CPUs in use; this kernel asks for 1"
        )
        assert await refusal(kernel_pod("c", cpu="100m", memory="2Gi")) == (
            f"team {team} has 256 MiB of 2 GiB memory in use; this kernel asks for 2 GiB"
        )
        assert await refusal(kernel_pod("d", gpu=1)) == (
            f"team {team} has 0 of 0 GPUs in use; this kernel asks for 1"
        )
        await kube.create(PODS, kernel_pod("e"), namespace=team)
        assert await refusal(kernel_pod("f")) == (
            f"team {team} has 2 of 2 kernels running; this kernel would be one more"
        )

        usage = await wait_usage(kube, team, "requests.cpu", "1600m")
        assert usage.team == team
        assert usage.summary() == (
            f"team {team}: 1.6 of 2 CPUs, 320 MiB of 2 GiB memory, 0 of 0 GPUs, "
            "2 of 2 kernels in use"
        )
        assert usage.shortfalls(requests={"cpu": "500m", "memory": "64Mi"}) == [
            f"team {team} has 1.6 of 2 CPUs in use; this kernel asks for 0.5",
            f"team {team} has 2 of 2 kernels running; this kernel would be one more",
        ]


async def wait_usage(kube: KubeClient, namespace: str, resource: str, value: str) -> Any:
    """The team's usage once the quota controller has counted ``resource`` as ``value``."""
    quota = await kube.get(RESOURCE_QUOTAS, manifests.QUOTA, namespace=namespace)
    while (quota.get("status") or {}).get("used", {}).get(resource) != value:
        async with kube.watch(
            RESOURCE_QUOTAS,
            namespace=namespace,
            resource_version=quota["metadata"]["resourceVersion"],
            timeout_seconds=30,
        ) as events:
            async for event in events:
                if event["type"] != "BOOKMARK":
                    quota = event["object"]
                    break
    return await team_usage(kube, namespace=namespace)


SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


def as_applied(obj: KubeObject) -> KubeObject:
    """An object read back, without what the API server adds on its own."""
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    for key in SERVER_SET:
        obj["metadata"].pop(key, None)
    if obj["kind"] == "Namespace":
        obj["metadata"]["labels"].pop("kubernetes.io/metadata.name")
        assert obj.pop("spec") == {"finalizers": ["kubernetes"]}
    return obj


async def test_render_equals_what_create_applies(admin_kube: KubeClient, team_names: Names) -> None:
    name = team_names("render")
    spec = team_spec(
        name,
        TeamOptions(
            cpu="3.5",
            memory="4096Mi",
            gpu="2",
            max_kernels=10,
            default_kernel_cpu="0.5",
            members=["alice", "bob"],
            groups=["render-team"],
        ),
    )
    rendered = manifests.team_manifests(spec)
    assert [obj["kind"] for obj in rendered] == [
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "Role",
        "RoleBinding",
        "NetworkPolicy",
    ]
    applied = await create_team(admin_kube, spec)
    assert [line.change for line in applied] == [Change.CREATED] * len(rendered)
    for obj in rendered:
        meta = obj["metadata"]
        stored = await admin_kube.get(
            resource_of(obj), meta["name"], namespace=meta.get("namespace")
        )
        assert as_applied(stored) == obj
    # Amounts are rendered as the API server stores them.
    assert rendered[1]["spec"]["hard"]["requests.cpu"] == "3500m"
    assert rendered[1]["spec"]["hard"]["requests.memory"] == "4Gi"


async def versions(kube: KubeClient, objects: list[KubeObject]) -> dict[str, str]:
    found = {}
    for obj in objects:
        meta = obj["metadata"]
        stored = await kube.get(resource_of(obj), meta["name"], namespace=meta.get("namespace"))
        found[f"{obj['kind']}/{meta['name']}"] = stored["metadata"]["resourceVersion"]
    return found


async def test_update_changes_only_what_it_should_and_a_second_run_nothing(
    admin_kube: KubeClient, team_names: Names
) -> None:
    name = team_names("update")
    await make_team(admin_kube, name, gpu="1", members=["alice"])
    # Fields others set are left alone.
    await admin_kube.patch(
        NAMESPACES,
        name,
        {"metadata": {"labels": {"cost-center": "42"}}},
        patch_type=PatchType.MERGE,
    )
    await admin_kube.patch(
        RESOURCE_QUOTAS,
        manifests.QUOTA,
        {"metadata": {"annotations": {"owner": "finance"}}},
        namespace=name,
    )
    objects = manifests.team_manifests(
        team_spec(name, TeamOptions(cpu="2", memory="2Gi", members=["alice"]))
    )
    before = await versions(admin_kube, objects)

    spec, applied = await update_team(admin_kube, name, TeamOptions(gpu="4"))
    assert {line.ref: line.change for line in applied} == {
        f"namespace/{name}": Change.UNCHANGED,
        "resourcequota/jkctl-team": Change.CONFIGURED,
        "limitrange/jkctl-kernel-defaults": Change.UNCHANGED,
        "role/jkctl-member": Change.UNCHANGED,
        "rolebinding/jkctl-members": Change.UNCHANGED,
        "networkpolicy/jkctl-deny-ingress": Change.UNCHANGED,
    }
    assert (spec.gpu, spec.cpu, spec.memory, spec.members) == (4, "2", "2Gi", ("alice",))
    quota = await admin_kube.get(RESOURCE_QUOTAS, manifests.QUOTA, namespace=name)
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "4"
    assert quota["spec"]["hard"]["requests.cpu"] == "2"
    assert quota["metadata"]["annotations"] == {"owner": "finance"}
    namespace = await admin_kube.get(NAMESPACES, name)
    assert namespace["metadata"]["labels"]["cost-center"] == "42"
    after = await versions(admin_kube, objects)
    changed = {ref for ref in before if before[ref] != after[ref]}
    assert changed <= {"ResourceQuota/jkctl-team"}

    await wait_usage(admin_kube, name, "requests.cpu", "0")  # the controller has caught up
    settled = await versions(admin_kube, objects)
    _, again = await update_team(admin_kube, name, TeamOptions(gpu="4"))
    assert {line.change for line in again} == {Change.UNCHANGED}
    assert await versions(admin_kube, objects) == settled

    _, members = await update_team(admin_kube, name, TeamOptions(members=["bob", "carol"]))
    binding = next(line.object for line in members if line.ref == "rolebinding/jkctl-members")
    assert [s["name"] for s in binding["subjects"]] == ["bob", "carol"]


async def test_create_is_idempotent_and_refuses_other_settings_or_foreign_namespaces(
    admin_kube: KubeClient, team_names: Names, kube_namespace: str
) -> None:
    name = team_names("create")
    await make_team(admin_kube, name, cpu="2")
    again = await create_team(admin_kube, team_spec(name, TeamOptions(cpu="2", memory="2Gi")))
    assert {line.change for line in again} == {Change.UNCHANGED}
    with pytest.raises(TeamExists) as refused:
        await make_team(admin_kube, name, cpu="4")
    assert refused.value.message == f"team {name} already exists with other settings"
    assert refused.value.context == (
        "differences (now -> asked): resourcequota/jkctl-team spec.hard.requests.cpu 2 -> 4, "
        "spec.hard.limits.cpu 2 -> 4"
    )
    with pytest.raises(TeamExists) as refused:
        await make_team(admin_kube, kube_namespace)
    assert (
        refused.value.message
        == f"namespace {kube_namespace} already exists and is not a jkctl team"
    )
    with pytest.raises(TeamNotFound) as missing:
        await update_team(admin_kube, kube_namespace, TeamOptions(gpu="1"))
    assert missing.value.message == f"namespace {kube_namespace} is not a jkctl team"
    with pytest.raises(TeamNotFound) as missing:
        await update_team(admin_kube, f"{name}-x", TeamOptions(gpu="1"))
    assert missing.value.message == f"there is no team {name}-x"


async def test_delete_refuses_while_a_pod_runs_and_force_removes_the_namespace(
    kubesim: Kubesim, admin_kube: KubeClient, team_names: Names
) -> None:
    name, dan = team_names("delete"), user("dan")
    await make_team(admin_kube, name, members=[dan])
    async with client_for(kubesim.new_user(dan)) as kube:
        await kube.create(PODS, kernel_pod("k-1"), namespace=name)
        await wait_running(kube, name, "k-1")
    listed = {status.name: status for status in await list_teams(admin_kube)}
    assert listed[name].kernels_running == 1
    assert listed[name].members == (dan,)

    deletion = await plan_deletion(admin_kube, name)
    assert deletion.running == ("k-1",)
    with pytest.raises(TeamBusy) as busy:
        require_idle(deletion, force=False)
    assert busy.value.message == (
        f"team {name} has 1 pod running (k-1); deleting it would stop them"
    )
    assert busy.value.hint is not None and "--force" in busy.value.hint
    require_idle(deletion, force=True)
    await delete_team(admin_kube, deletion, wait=60)
    with pytest.raises(KubeNotFound):
        await admin_kube.get(NAMESPACES, name)
    with pytest.raises(TeamNotFound):
        await plan_deletion(admin_kube, name)


async def test_an_admin_without_the_rights_is_told_which(
    kubesim: Kubesim, team_names: Names
) -> None:
    name, eve = team_names("rights"), user("eve")
    async with client_for(kubesim.new_user(eve)) as kube:
        with pytest.raises(KubeForbidden) as refused:
            await make_team(kube, name)
        with pytest.raises(KubeForbidden) as refused_delete:
            await plan_deletion(kube, name)
    message = refused.value.message
    assert message.startswith(
        "you may not create namespaces (cluster-wide); nor get namespaces, resourcequotas, "
    )
    assert "roles.rbac.authorization.k8s.io" in message
    assert "networkpolicies.networking.k8s.io" in message
    assert message.endswith(f" in namespace {name}, which creating team {name} needs")
    assert refused.value.context == f'as user "{eve}" of context "{eve}"'
    assert refused_delete.value.message == (
        f"you may not get namespaces, delete namespaces or list pods in namespace {name}, "
        f"which deleting team {name} needs"
    )
