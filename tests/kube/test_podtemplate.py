"""Pod templates render as data: values never add structure, and bad templates name the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jkctl import paths
from jkctl.errors import TemplateError
from jkctl.kernels.specs import KernelSpec, KernelSpecSource
from jkctl.kube.podconfig import parse_pod_config
from jkctl.kube.podtemplate import (
    KernelPodValues,
    default_template,
    example_pod,
    kernel_command,
    kernel_pod_values,
    render_kernel_pod,
    render_pod,
)

CONNECTION_FILE = "/var/run/jkctl/connection/connection.json"


def values(**overrides: Any) -> KernelPodValues:
    base: dict[str, Any] = {
        "pod_name": "kernel-0123",
        "namespace": "geo",
        "kernel_id": "0123",
        "image": "quay.io/jupyter/base-notebook:2024-12-02",
        "command": kernel_command(
            ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            connection_file=CONNECTION_FILE,
        ),
        "secret_name": "kernel-0123",
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
        "labels": {"jkctl.io/kernel-id": "0123"},
        "annotations": {"jkctl.io/lease-seconds": "7200"},
    }
    base.update(overrides)
    return KernelPodValues(**base)


def kernel_container(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = (c for c in pod["spec"]["containers"] if c["name"] == "kernel")
    return container


def test_bundled_template_renders_a_locked_down_pod() -> None:
    pod = render_pod(default_template(), values(), source="bundled")
    spec = pod["spec"]
    assert pod["metadata"]["name"] == "kernel-0123"
    assert spec["restartPolicy"] == "Never"
    assert spec["securityContext"]["runAsNonRoot"] is True
    container = kernel_container(pod)
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert container["command"][-5:] == [
        "python",
        "-m",
        "ipykernel_launcher",
        "-f",
        CONNECTION_FILE,
    ]
    secret_volume = next(v for v in spec["volumes"] if v["name"] == "connection")
    assert secret_volume["secret"] == {"secretName": "kernel-0123", "defaultMode": 0o440}
    # The key lives in the Secret only: nothing in the pod spec carries it.
    assert "key" not in str(container.get("env"))


def test_gpu_scheduling_fields_render_when_given() -> None:
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    pod = render_pod(
        default_template(),
        values(node_selector={"nvidia.com/gpu.present": "true"}, tolerations=[toleration]),
        source="bundled",
    )
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["spec"]["tolerations"] == [toleration]
    assert "nodeSelector" not in render_pod(default_template(), values(), source="b")["spec"]


HOSTILE_VALUES = [
    "x\nmalicious: true",
    "x\n---\nkind: Secret",
    '"]}, {"name": "evil", "value": "1',
    "{{ 7*7 }}",
    "{% for x in range(3) %}x{% endfor %}",
    "&anchor *alias !!python/object:os.system",
    "é😀\x85\u2028\x9f\x00\t",
    "",
]


@pytest.mark.parametrize("hostile", HOSTILE_VALUES)
def test_hostile_values_stay_one_value(hostile: str) -> None:
    pod = render_pod(
        default_template(),
        values(
            env={"KERNEL_USERNAME": hostile},
            labels={"jkctl.io/owner": hostile},
            working_dir=hostile or None,
            image=hostile or "x",
        ),
        source="bundled",
    )
    container = kernel_container(pod)
    assert {"name": "KERNEL_USERNAME", "value": hostile} in container["env"]
    assert pod["metadata"]["labels"] == {"jkctl.io/owner": hostile}
    assert container["image"] == (hostile or "x")
    assert set(pod) == {"apiVersion", "kind", "metadata", "spec"}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=60), max_size=4))
def test_any_env_round_trips_exactly(env: dict[str, str]) -> None:
    pod = render_pod(default_template(), values(env=env), source="bundled")
    rendered = {e["name"]: e["value"] for e in kernel_container(pod)["env"][1:]}
    assert rendered == env


def test_unknown_field_is_named() -> None:
    template = default_template().replace(
        "restartPolicy: Never", "restartPolicy: Never\n  bogus: 1"
    )
    with pytest.raises(TemplateError) as raised:
        render_pod(template, values(), source="r/kernel-pod.yaml.j2")
    assert raised.value.message.startswith("r/kernel-pod.yaml.j2: the rendered Pod is invalid:")
    assert "spec.bogus: is not a field Kubernetes knows here" in raised.value.message


def test_wrong_type_is_named() -> None:
    template = default_template().replace(
        "terminationGracePeriodSeconds: {{ termination_grace_seconds }}",
        "terminationGracePeriodSeconds: soon",
    )
    with pytest.raises(TemplateError) as raised:
        render_pod(template, values(), source="t.j2")
    assert "spec.terminationGracePeriodSeconds" in raised.value.message


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(TemplateError) as raised:
        render_pod("apiVersion: v1\nkind: {{ oops", values(), source="t.j2")
    assert raised.value.message.startswith("t.j2, line 2: the template does not parse")


def test_unknown_variable_lists_the_known_ones() -> None:
    with pytest.raises(TemplateError) as raised:
        render_pod("kind: {{ nope }}", values(), source="t.j2")
    assert "'nope' is undefined" in raised.value.message
    assert raised.value.hint is not None
    assert "pod_name" in raised.value.hint


def test_sandbox_blocks_python_internals() -> None:
    with pytest.raises(TemplateError) as raised:
        render_pod("kind: {{ image.__class__.__mro__ }}", values(), source="t.j2")
    assert raised.value.reference == "template-error"


def test_template_must_keep_the_kernel_container() -> None:
    template = default_template().replace("- name: kernel\n", "- name: notebook\n")
    with pytest.raises(TemplateError, match="no container named 'kernel'"):
        render_pod(template, values(), source="t.j2")


def test_template_must_keep_the_lease_volume() -> None:
    template = default_template().replace("downwardAPI:", "emptyDir: {}\n      x-downwardAPI:")
    with pytest.raises(TemplateError):
        render_pod(template, values(), source="t.j2")


def bundled_specs() -> dict[str, KernelSpec]:
    return KernelSpecSource(dirs=(paths.bundled("kernel-templates"),)).all()


@pytest.mark.parametrize("name", sorted(bundled_specs()))
def test_every_bundled_spec_and_profile_renders_a_valid_pod(name: str) -> None:
    spec = bundled_specs()[name]
    pod = example_pod(spec.pod, argv=spec.argv, spec_env=spec.env, namespace="geo")
    container = kernel_container(pod)
    assert container["image"] == spec.pod.image
    assert container["resources"] == spec.pod.resources.to_json()
    assert container["command"][-len(spec.argv) :] == [
        part.replace("{connection_file}", CONNECTION_FILE) for part in spec.argv
    ]
    assert pod["spec"].get("nodeSelector", {}) == dict(spec.pod.node_selector)
    assert pod["spec"].get("tolerations", []) == [dict(t) for t in spec.pod.tolerations]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["requests"].keys() >= {"cpu", "memory"}
    assert container["resources"]["limits"].keys() >= {"cpu", "memory"}


def test_spec_fields_reach_the_pod() -> None:
    config = parse_pod_config(
        {
            "image": "registry.example.com/geo:1",
            "imagePullPolicy": "Always",
            "imagePullSecrets": ["team-registry"],
            "serviceAccountName": "kernels",
            "runAsUser": 1001,
            "runAsGroup": 1000,
            "workingDir": "/data",
            "env": {"FROM_JKCTL": "1", "BOTH": "jkctl"},
            "labels": {"team": "geo"},
            "annotations": {"example.com/cost": "42"},
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "geo"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        },
        source="t",
    )
    values = kernel_pod_values(
        config,
        pod_name="kernel-0123",
        namespace="geo",
        kernel_id="0123",
        command=["python"],
        secret_name="kernel-0123",
        labels={"jkctl.io/kernel-id": "0123"},
        annotations={"jkctl.io/lease-seconds": "60"},
        spec_env={"FROM_SPEC": "1", "BOTH": "spec"},
        launch_env={"KERNEL_USERNAME": "ana"},
    )
    pod = render_kernel_pod(config, values)
    spec = pod["spec"]
    container = kernel_container(pod)
    assert spec["imagePullSecrets"] == [{"name": "team-registry"}]
    assert spec["serviceAccountName"] == "kernels"
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsUser"] == 1001
    assert spec["securityContext"]["runAsGroup"] == 1000
    assert container["imagePullPolicy"] == "Always"
    assert container["workingDir"] == "/data"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["BOTH"] == "jkctl"  # metadata.jkctl.env over kernel.json's env
    assert {"FROM_SPEC", "FROM_JKCTL", "KERNEL_USERNAME", "JKCTL_PODINFO"} <= env.keys()
    assert pod["metadata"]["labels"] == {"team": "geo", "jkctl.io/kernel-id": "0123"}
    assert pod["metadata"]["annotations"]["example.com/cost"] == "42"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "geo"}} in spec["volumes"]
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    assert {v["name"] for v in spec["volumes"]} == {"connection", "podinfo", "data"}


def test_a_spec_override_template_is_used_and_gets_its_template_values(tmp_path: Path) -> None:
    override = default_template().replace(
        "enableServiceLinks: false",
        "enableServiceLinks: false\n  priorityClassName: {{ extra.priority }}",
    )
    (tmp_path / "kernel-pod.yaml.j2").write_text(override)
    config = parse_pod_config(
        {"templateValues": {"priority": "kernels-low"}},
        source="t",
        pod_template=tmp_path / "kernel-pod.yaml.j2",
    )
    pod = example_pod(config, argv=["python"], spec_env={}, namespace="geo")
    assert pod["spec"]["priorityClassName"] == "kernels-low"
    assert kernel_container(pod)["image"] == "no-image-set"


def test_a_broken_override_names_its_file(tmp_path: Path) -> None:
    template = tmp_path / "kernel-pod.yaml.j2"
    template.write_text(default_template().replace("restartPolicy: Never", "restartPolicy: {{"))
    config = parse_pod_config(None, source="t", pod_template=template)
    with pytest.raises(TemplateError) as raised:
        example_pod(config, argv=["python"], spec_env={}, namespace="geo")
    assert raised.value.message.startswith(f"{template}, line ")
