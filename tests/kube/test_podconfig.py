"""metadata.jkctl: what is accepted, and errors that name the file, the field and what it takes."""

from __future__ import annotations

from typing import Any

import pytest

from jkctl.errors import TemplateError
from jkctl.images.kernelspec import KernelOptions, Resources, conda_kernelspec
from jkctl.kube.podconfig import (
    PodConfig,
    check_fragment,
    merge_blocks,
    parse_pod_config,
)

SOURCE = "/home/ana/kernels/geo/kernel.json"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def parse(block: Any) -> PodConfig:
    return parse_pod_config(block, source=SOURCE)


def error_for(block: Any) -> TemplateError:
    with pytest.raises(TemplateError) as raised:
        parse(block)
    return raised.value


def test_a_full_block_is_read_into_typed_fields() -> None:
    config = parse(
        {
            "image": "registry.example.com/team/kernel-geo:1",
            "imagePullPolicy": "Always",
            "imagePullSecrets": ["team-registry", {"name": "other"}],
            "resources": {
                "requests": {"cpu": 1, "memory": "2Gi"},
                "limits": {"cpu": 2.5, "memory": "8Gi", "nvidia.com/gpu": 1},
            },
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [GPU_TOLERATION],
            "env": {"MPLBACKEND": "agg"},
            "workingDir": "/home/jovyan/work",
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "serviceAccountName": "kernels",
            "labels": {"team": "geo"},
            "annotations": {"example.com/cost-center": "42"},
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "geo"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
            "templateValues": {"anything": [1, 2]},
            "profiles": ["large", "gpu"],
        }
    )
    assert config.image == "registry.example.com/team/kernel-geo:1"
    assert config.image_pull_secrets == ("team-registry", "other")
    assert config.resources.requests == {"cpu": "1", "memory": "2Gi"}
    assert config.resources.limits == {"cpu": "2.5", "memory": "8Gi", "nvidia.com/gpu": "1"}
    assert config.resources.gpus == 1
    assert config.tolerations == (GPU_TOLERATION,)
    assert config.run_as_group == 1000
    assert config.volume_mounts[0]["mountPath"] == "/data"
    assert config.template_values == {"anything": [1, 2]}
    assert config.profiles == {"large": {}, "gpu": {}}
    # The canonical form reads back to the same config.
    assert parse(config.to_json()) == config


def test_what_build_kernel_image_writes_is_accepted() -> None:
    options = KernelOptions(
        image="registry.example.com/team/kernel-geo:1",
        resources=Resources.from_options(cpu="1:4", memory="2Gi:8Gi", gpu=2),
    )
    config = parse(conda_kernelspec("geo", options)["metadata"]["jkctl"])
    assert config.resources.gpus == 2
    assert config.resources.requests == {"cpu": "1", "memory": "2Gi"}


def test_no_block_gets_the_default_resources() -> None:
    config = parse(None)
    assert config.image is None
    assert config.resources.requests == {"cpu": "500m", "memory": "1Gi"}
    assert config.resources.limits == {"cpu": "2", "memory": "4Gi"}


@pytest.mark.parametrize(
    ("resources", "requests", "limits"),
    [
        # A big request lifts the default limit; a small limit lowers the default request.
        ({"requests": {"memory": "8Gi"}}, {"memory": "8Gi"}, {"memory": "8Gi"}),
        ({"limits": {"cpu": "250m"}}, {"cpu": "250m"}, {"cpu": "250m"}),
        ({"limits": {"memory": "16Gi"}}, {"memory": "1Gi"}, {"memory": "16Gi"}),
    ],
)
def test_defaults_never_contradict_what_is_set(
    resources: dict[str, Any], requests: dict[str, str], limits: dict[str, str]
) -> None:
    config = parse({"resources": resources})
    assert requests.items() <= config.resources.requests.items()
    assert limits.items() <= config.resources.limits.items()


@pytest.mark.parametrize(
    ("block", "field", "message", "hint"),
    [
        (
            {"resources": {"requests": {"cpu": "2 cores"}}},
            "metadata.jkctl.resources.requests.cpu",
            "is '2 cores', which is not a Kubernetes quantity",
            "millicores such as 500m",
        ),
        (
            {"resources": {"limits": {"memory": "8GB"}}},
            "metadata.jkctl.resources.limits.memory",
            "(Kubernetes writes 8G)",
            "512Mi, 4Gi or 2G",
        ),
        (
            {"resources": {"requests": {"cpu": "4"}, "limits": {"cpu": "2"}}},
            "metadata.jkctl.resources.requests.cpu",
            "is 4, more than its limit 2",
            "raise metadata.jkctl.resources.limits.cpu",
        ),
        (
            {"resources": {"requests": {"nvidia.com/gpu": "1"}}},
            "metadata.jkctl.resources.requests.nvidia.com/gpu",
            "is set without a limit",
            "Set metadata.jkctl.resources.limits.nvidia.com/gpu instead",
        ),
        (
            {"resources": {"limits": {"nvidia.com/gpu": "0.5"}}},
            "metadata.jkctl.resources.limits.nvidia.com/gpu",
            "only counted in whole units",
            "a whole number",
        ),
        (
            {"resources": {"limits": {"gpu": 1}}},
            "metadata.jkctl.resources.limits.gpu",
            "is not a resource Kubernetes knows",
            "Did you mean nvidia.com/gpu?",
        ),
        (
            {"gpus": 1},
            "metadata.jkctl.gpus",
            "is not a field jkctl knows",
            "Did you mean resources.limits.nvidia.com/gpu?",
        ),
        (
            {"nodeselector": {}},
            "metadata.jkctl.nodeselector",
            "is not a field jkctl knows",
            "Did you mean nodeSelector?",
        ),
        (
            {"image": "Registry/Team Image"},
            "metadata.jkctl.image",
            "is 'Registry/Team Image', which is not an image reference",
            "REGISTRY/PATH:TAG",
        ),
        (
            {"imagePullPolicy": "Sometimes"},
            "metadata.jkctl.imagePullPolicy",
            "is the string 'Sometimes'",
            "one of IfNotPresent, Always, Never",
        ),
        (
            {"nodeSelector": {"nvidia.com/gpu.present": True}},
            "metadata.jkctl.nodeSelector.nvidia.com/gpu.present",
            "is true, not a string",
            "a string",
        ),
        (
            {"env": {"THREADS": 4}},
            "metadata.jkctl.env.THREADS",
            "is the number 4, not a string",
            'quote it, "4"',
        ),
        (
            {"env": {"JKCTL_PODINFO": "/x"}},
            "metadata.jkctl.env.JKCTL_PODINFO",
            "names starting JKCTL_ are jkctl's own",
            "Keys of metadata.jkctl.env are",
        ),
        (
            {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "value": "x"}]},
            "metadata.jkctl.tolerations[0].value",
            "is set with operator Exists",
            "use Equal",
        ),
        (
            {"tolerations": [{"key": "a", "effect": "NoRun"}]},
            "metadata.jkctl.tolerations[0].effect",
            "is the string 'NoRun'",
            "NoSchedule, PreferNoSchedule, NoExecute",
        ),
        (
            {"workingDir": "work"},
            "metadata.jkctl.workingDir",
            "is the string 'work'",
            "an absolute path",
        ),
        (
            {"runAsUser": 0},
            "metadata.jkctl.runAsUser",
            "is the number 0 (kernel pods never run as root)",
            "from 1 up",
        ),
        (
            {"labels": {"jkctl.io/kernel-id": "x"}},
            "metadata.jkctl.labels.jkctl.io/kernel-id",
            "keys under jkctl.io/ are jkctl's own",
            "not under jkctl.io/",
        ),
        (
            {"volumes": [{"name": "data", "persistentVolumeClaim": {}}]},
            "metadata.jkctl.volumes[0].persistentVolumeClaim.claimName",
            "is required",
            "kubectl explain pod.spec.volumes",
        ),
        (
            {"volumes": [{"name": "connection", "emptyDir": {}}]},
            "metadata.jkctl.volumes[0].name",
            "a volume of jkctl's pod template",
            "something other than connection or podinfo",
        ),
        (
            {"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            "metadata.jkctl.volumeMounts[0].name",
            "which metadata.jkctl.volumes does not declare",
            "Add a volume named 'data'",
        ),
        (
            {"imagePullSecrets": ["Team_Registry"]},
            "metadata.jkctl.imagePullSecrets[0]",
            "not a DNS subdomain name",
            "a Secret's name",
        ),
        (
            {"profiles": ["Large"]},
            "metadata.jkctl.profiles.Large",
            "is the string 'Large'",
            "lower-case letters",
        ),
        (
            {"profiles": {"gpu": {"nodeSelector": "gpu"}}},
            "metadata.jkctl.profiles.gpu.nodeSelector",
            "is the string 'gpu', not an object",
            'Write metadata.jkctl.profiles.gpu.nodeSelector as {"nvidia.com/gpu.present"',
        ),
        (
            ["image"],
            "metadata.jkctl",
            "is an array, not an object",
            "Write metadata.jkctl as",
        ),
    ],
)
def test_errors_name_the_file_the_field_and_what_it_takes(
    block: Any, field: str, message: str, hint: str
) -> None:
    error = error_for(block)
    assert error.message.startswith(f"{SOURCE}: {field} ")
    assert message in error.message
    assert error.hint is not None
    assert hint in error.hint
    assert error.reference == "template-error"


def test_every_problem_is_reported_at_once() -> None:
    error = error_for({"image": "x y", "resources": {"requests": {"cpu": "lots"}}, "env": {"A": 1}})
    assert "metadata.jkctl.image" in error.message
    assert error.context is not None
    assert "also: metadata.jkctl.resources.requests.cpu is 'lots'" in error.context
    assert "also: metadata.jkctl.env.A is the number 1" in error.context


def test_fragments_are_checked_alone_and_judged_after_merging() -> None:
    fragment = check_fragment(
        {"displayName": "big", "resources": {"requests": {"memory": 16}}},
        source="profiles.yaml",
        field="profiles.big",
        extra=("displayName",),
    )
    assert fragment == {"displayName": "big", "resources": {"requests": {"memory": "16"}}}
    with pytest.raises(TemplateError, match=r"profiles\.yaml: profiles\.big\.profiles is not"):
        check_fragment({"profiles": ["x"]}, source="profiles.yaml", field="profiles.big")


def test_merging_adds_arrays_merges_objects_and_replaces_values() -> None:
    base = parse({"image": "a:1", "env": {"A": "1"}, "tolerations": [GPU_TOLERATION]}).to_json()
    other = {"key": "spot", "operator": "Exists"}
    merged = merge_blocks(
        base,
        {
            "image": "b:2",
            "env": {"B": "2"},
            "tolerations": [GPU_TOLERATION, other],
            "resources": {"limits": {"nvidia.com/gpu": "1"}},
        },
    )
    config = parse(merged)
    assert config.image == "b:2"
    assert config.env == {"A": "1", "B": "2"}
    assert config.tolerations == (GPU_TOLERATION, other)
    assert config.resources.limits == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}


def test_merged_checks_the_overrides_and_the_result() -> None:
    config = parse({"resources": {"limits": {"cpu": "2"}}})
    bigger = config.merged(
        {"resources": {"requests": {"cpu": "1"}}}, source="the launch request", field="launch"
    )
    assert bigger.resources.requests["cpu"] == "1"
    with pytest.raises(TemplateError) as raised:
        config.merged(
            {"resources": {"requests": {"cpu": "3"}}}, source="the launch request", field="launch"
        )
    assert raised.value.message.startswith("the launch request: ")
    assert "more than its limit 2" in raised.value.message


def test_overrides_adjust_defaults_instead_of_fighting_them() -> None:
    config = parse({"image": "a:1"})
    assert config.resources.limits["cpu"] == "2"  # a default, not written
    bigger = config.merged(
        {"resources": {"requests": {"cpu": "4"}}}, source="KERNEL_CPUS", field="KERNEL_CPUS"
    )
    assert bigger.resources.requests["cpu"] == "4"
    assert bigger.resources.limits["cpu"] == "4"
    assert bigger.image == "a:1"
