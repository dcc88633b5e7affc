"""Kernel pods from Jinja2 templates, rendered as data and validated as a Pod.

A pod template is YAML with Jinja2 expressions. Every `{{ expression }}` is
emitted as a JSON literal (JSON is YAML's flow syntax), so a value such as an
image name, an environment variable from a launch request or a label is
always exactly one YAML scalar, list or mapping: it can never add a key,
close a block or start a document, whatever characters it holds. Values are
data handed to the template, never template source, so `{{ 7*7 }}` inside a
value stays those seven characters. Templates run in Jinja's sandbox. Write
whole values (`name: {{ pod_name }}`), and compose strings inside the
expression (`{{ "kernel-" ~ kernel_id }}`), never around it.

The rendered YAML is parsed with `yaml.safe_load` and validated against the
Pod schema the `kubernetes` package ships (unknown fields, wrong types and
missing required fields are all errors), then checked for what jkctl itself
relies on: a container named `kernel` that mounts the connection Secret and
the pod-info volume the lease needs. Errors name the template file, the
field and what is wrong.

:func:`kernel_pod_values` and :func:`render_kernel_pod` are what the
Kubernetes backend calls: a kernelspec's checked ``metadata.jkctl``
(:class:`~jkctl.kube.podconfig.PodConfig`) plus the values only a launch
knows (pod and Secret names, labels, the launch's env) make a Pod, rendered
from the spec's own template when it has one. :func:`example_pod` renders
one with placeholder values, for `jkctl kernelspecs show --pod` and
`validate`.

What this module does not do: choose the launch's values (the Kubernetes
backend does, from the kernelspec and the launch request) or talk to the API.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
import pydantic
import yaml
from kubernetes import client as k8s_models

from jkctl import paths
from jkctl.errors import TemplateError

from .podconfig import TEMPLATE_FILE, PodConfig

KERNEL_CONTAINER = "kernel"
CONNECTION_VOLUME = "connection"
PODINFO_VOLUME = "podinfo"


@dataclass(frozen=True, kw_only=True)
class KernelPodValues:
    """Everything a pod template may refer to. Field names are the template's variables."""

    pod_name: str
    namespace: str
    kernel_id: str
    image: str
    command: Sequence[str]
    secret_name: str
    connection_dir: str = "/var/run/jkctl/connection"
    podinfo_dir: str = "/var/run/jkctl/podinfo"
    image_pull_policy: str = "IfNotPresent"
    env: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    image_pull_secrets: Sequence[str] = ()
    service_account_name: str | None = None
    #: Extra volumes and kernel-container mounts (Kubernetes' own JSON form).
    volumes: Sequence[Mapping[str, Any]] = ()
    volume_mounts: Sequence[Mapping[str, Any]] = ()
    run_as_user: int = 1000
    run_as_group: int = 100
    termination_grace_seconds: int = 10
    #: Free-form values a kernelspec passes to its own template (`metadata.jkctl.templateValues`).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        # Plain containers only: the sandbox then has nothing of ours to reach into.
        plain: dict[str, Any] = json.loads(json.dumps(values))
        return plain


def default_template_path() -> Path:
    """The shared pod template bundled with jkctl, beside the bundled kernelspecs."""
    return paths.bundled("kernel-templates") / TEMPLATE_FILE


def default_template() -> str:
    """The text of the shared pod template."""
    return load_template(default_template_path())


def template_for(config: PodConfig) -> tuple[str, str]:
    """The pod template `config`'s pods are rendered from, and its file for errors."""
    path = config.pod_template or default_template_path()
    return load_template(path), str(path)


def kernel_pod_values(
    config: PodConfig,
    *,
    pod_name: str,
    namespace: str,
    kernel_id: str,
    command: Sequence[str],
    secret_name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    spec_env: Mapping[str, str],
    launch_env: Mapping[str, str],
) -> KernelPodValues:
    """A kernel pod's values: the spec's pod settings plus what only the launch knows.

    Env is the kernelspec's Jupyter ``env``, then ``metadata.jkctl.env``, then
    the launch's (later wins); labels and annotations are the spec's, then
    the launch's (jkctl's own ``jkctl.io/`` keys, which a spec cannot set).
    """
    return KernelPodValues(
        pod_name=pod_name,
        namespace=namespace,
        kernel_id=kernel_id,
        image=config.image or "",
        command=list(command),
        secret_name=secret_name,
        image_pull_policy=config.image_pull_policy,
        env={**spec_env, **config.env, **launch_env},
        resources=config.resources.to_json(),
        node_selector=dict(config.node_selector),
        tolerations=[dict(t) for t in config.tolerations],
        labels={**config.labels, **labels},
        annotations={**config.annotations, **annotations},
        working_dir=config.working_dir,
        run_as_user=config.run_as_user or KernelPodValues.run_as_user,
        run_as_group=(
            config.run_as_group if config.run_as_group is not None else KernelPodValues.run_as_group
        ),
        image_pull_secrets=list(config.image_pull_secrets),
        service_account_name=config.service_account_name,
        volumes=[dict(v) for v in config.volumes],
        volume_mounts=[dict(m) for m in config.volume_mounts],
        extra=dict(config.template_values),
    )


def render_kernel_pod(config: PodConfig, values: KernelPodValues) -> dict[str, Any]:
    """Render `values` with `config`'s template into a validated Pod manifest."""
    template, source = template_for(config)
    return render_pod(template, values, source=source)


EXAMPLE_KERNEL_ID = "00000000-0000-4000-8000-000000000000"
#: Stands in for the image of a spec that names none (the launch must give KERNEL_IMAGE).
NO_IMAGE = "no-image-set"


def example_pod(
    config: PodConfig, *, argv: Sequence[str], spec_env: Mapping[str, str], namespace: str
) -> dict[str, Any]:
    """The pod a kernel of this spec would get, with placeholder names and ids."""
    name = f"jkctl-kernel-{EXAMPLE_KERNEL_ID[:8]}"
    connection_dir = KernelPodValues.connection_dir
    values = kernel_pod_values(
        config,
        pod_name=name,
        namespace=namespace,
        kernel_id=EXAMPLE_KERNEL_ID,
        command=kernel_command(argv, connection_file=f"{connection_dir}/connection.json"),
        secret_name=name,
        labels={"jkctl.io/kernel-id": EXAMPLE_KERNEL_ID},
        annotations={},
        spec_env=spec_env,
        launch_env={},
    )
    if not config.image:
        values = dataclasses.replace(values, image=NO_IMAGE)
    return render_kernel_pod(config, values)


def load_template(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise TemplateError(
            f"cannot read the pod template {path}: {exc.strerror}",
            hint="check the path, or remove the kernelspec's template override",
        ) from exc


# Characters JSON leaves raw that YAML refuses or reads as line breaks. (With
# ensure_ascii, JSON would write astral characters as surrogate-pair escapes,
# which YAML decodes into two lone surrogates; so escape just these instead.)
_NOT_YAML_PRINTABLE = re.compile("[\\x7f-\\x9f\\u2028\\u2029\\ufffe\\uffff]")


def _emit(value: Any) -> str:
    """Jinja's finalize hook: every expression becomes one JSON (hence YAML) literal."""
    if isinstance(value, jinja2.Undefined):
        value.__str__()  # raises UndefinedError, reported with the variable's name
    literal = json.dumps(value, ensure_ascii=False)
    return _NOT_YAML_PRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", literal)


#: libyaml's safe loader when PyYAML has it: a pod with the wrapper script inline is a few
#: KiB of quoted text, which the pure-Python scanner takes milliseconds over per launch.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_ENVIRONMENT = jinja2.sandbox.ImmutableSandboxedEnvironment(
    finalize=_emit,
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


def render_pod(template: str, values: KernelPodValues, *, source: str) -> dict[str, Any]:
    """Render `template` with `values` into a validated Pod manifest (a plain dict)."""
    try:
        text = _ENVIRONMENT.from_string(template).render(values.context())
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"{source}, line {exc.lineno}: the template does not parse: {exc.message}",
            hint="fix the Jinja2 syntax at that line",
        ) from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"{source}: the template uses an unknown value ({exc.message})",
            hint="pod templates may use: " + ", ".join(values.context()),
        ) from exc
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(
            f"{source}: the template tried something the sandbox forbids ({exc})",
            hint="templates may only format the values they are given",
        ) from exc
    try:
        manifest = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f", line {where.line + 1}" if where is not None else ""
        raise TemplateError(
            f"{source}{line}: the rendered template is not valid YAML: {exc}",
            hint="check the template's indentation and that each expression stands for a "
            "whole value",
        ) from exc
    validate_pod(manifest, source=source)
    _check_jkctl_contract(manifest, values, source=source)
    return manifest  # type: ignore[no-any-return]


def validate_pod(manifest: Any, *, source: str) -> None:
    """Check `manifest` against the Kubernetes Pod schema; raise TemplateError naming the field."""
    if not isinstance(manifest, dict):
        raise TemplateError(
            f"{source}: the template must render a Pod mapping, not {type(manifest).__name__}",
            hint="start the template with `apiVersion: v1` and `kind: Pod`",
        )
    if (manifest.get("apiVersion"), manifest.get("kind")) != ("v1", "Pod"):
        raise TemplateError(
            f"{source}: the template renders kind {manifest.get('kind')!r}, "
            f"apiVersion {manifest.get('apiVersion')!r}; it must render a v1 Pod",
            hint="set `apiVersion: v1` and `kind: Pod`",
        )
    try:
        k8s_models.V1Pod.model_validate(manifest)
    except pydantic.ValidationError as exc:
        problems = [
            f"{_field_path(error['loc'])}: {_describe(error)}" for error in exc.errors()[:5]
        ]
        raise TemplateError(
            f"{source}: the rendered Pod is invalid: " + "; ".join(problems),
            hint="compare the fields with the Kubernetes Pod reference (kubectl explain pod.spec)",
        ) from exc


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _describe(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "is not a field Kubernetes knows here"
    if kind == "missing":
        return "is required"
    return str(error.get("msg", "is invalid")).lower()


def _check_jkctl_contract(
    manifest: dict[str, Any], values: KernelPodValues, *, source: str
) -> None:
    spec = manifest.get("spec") or {}
    containers = {c.get("name"): c for c in spec.get("containers") or []}
    kernel = containers.get(KERNEL_CONTAINER)
    if kernel is None:
        raise TemplateError(
            f"{source}: the Pod has no container named {KERNEL_CONTAINER!r}",
            hint=f"name the container that runs the kernel {KERNEL_CONTAINER!r}",
        )
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    secret = (volumes.get(CONNECTION_VOLUME) or {}).get("secret") or {}
    if secret.get("secretName") != values.secret_name:
        raise TemplateError(
            f"{source}: volume {CONNECTION_VOLUME!r} must be the Secret {{{{ secret_name }}}}",
            hint="keep the connection volume from the bundled kernel-pod.yaml.j2",
        )
    if "downwardAPI" not in (volumes.get(PODINFO_VOLUME) or {}):
        raise TemplateError(
            f"{source}: volume {PODINFO_VOLUME!r} must be a downwardAPI volume",
            hint="keep the podinfo volume from the bundled kernel-pod.yaml.j2; "
            "the kernel's lease needs it",
        )
    mounts = {m.get("name"): m.get("mountPath") for m in kernel.get("volumeMounts") or []}
    for volume, path in (
        (CONNECTION_VOLUME, values.connection_dir),
        (PODINFO_VOLUME, values.podinfo_dir),
    ):
        if mounts.get(volume) != path:
            raise TemplateError(
                f"{source}: the {KERNEL_CONTAINER!r} container must mount volume "
                f"{volume!r} at {path}",
                hint="keep the volumeMounts from the bundled kernel-pod.yaml.j2",
            )


def kernel_command(argv: Sequence[str], *, connection_file: str) -> list[str]:
    """The container command: the lease-and-restart wrapper around the kernelspec's argv.

    The wrapper also gets the connection file's path and the output keeper's source
    (run with the image's Python, if it has pyzmq). Both travel in the command rather
    than in env, so a custom pod template cannot lose them."""
    package = resources.files("jkctl.kube")
    wrapper = package.joinpath("kernel-wrapper.sh").read_text()
    keeper = package.joinpath("output_keeper.py").read_text()
    kernel_argv = [part.replace("{connection_file}", connection_file) for part in argv]
    return ["/bin/sh", "-c", wrapper, "jkctl-kernel", connection_file, keeper, *kernel_argv]
