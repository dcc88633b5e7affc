"""Pod templates render as data: values never add structure, and bad templates name the field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jkctl.errors import TemplateError
from jkctl.kube.podtemplate import (
    KernelPodValues,
    default_template,
    kernel_command,
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
