"""`jkctl build-kernel-image conda-env`: a conda environment as a kernel image, and its kernelspec.

Thin, like every command: it turns options into :mod:`jkctl.images`'
dataclasses, calls the library in order (read or export the environment,
write the build context, build, register) and draws progress. Status, notes
and progress go to stderr through rich; stdout carries only results: the build
commands with ``--dry-run``, else the image reference and, with
``--register``, the kernelspec's folder.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import click
from rich.console import Console
from rich.markup import escape
from rich.status import Status

from jkctl import paths
from jkctl.cli.cluster import ClusterTarget, cluster_options
from jkctl.errors import BuilderUnavailable, UsageError
from jkctl.images.builders import (
    BUILDER_NAMES,
    CLUSTER_BUILDER,
    Builder,
    BuildRequest,
    select_builder,
)
from jkctl.images.buildlog import BuildStep
from jkctl.images.context import write_build_context
from jkctl.images.envfile import CondaEnvironment, load_environment_file
from jkctl.images.export import export_local_environment
from jkctl.images.kernelspec import (
    KernelOptions,
    Resources,
    check_image_reference,
    check_registration,
    kernelspec_name,
    register_kernelspec,
)


@click.group("build-kernel-image")
def build_kernel_image() -> None:
    """Build kernel images that jkctl can run as pods."""


@build_kernel_image.command("conda-env")
@click.argument(
    "env_file",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="[ENV_FILE]",
)
@click.option(
    "--name",
    "env_name",
    metavar="ENV",
    help="Name of the environment (and of the kernelspec conda-ENV). Without ENV_FILE: the "
    "local conda environment to export.",
)
@click.option(
    "--tag", required=True, metavar="IMAGE", help="Image reference to build, REGISTRY/PATH:TAG."
)
@click.option("--push", is_flag=True, help="Push the image after building it.")
@click.option(
    "--builder",
    "builder_name",
    type=click.Choice(BUILDER_NAMES),
    help="Builder to use [default: the first of docker, podman, buildah on PATH].",
)
@click.option("--platform", metavar="OS/ARCH", help="Target platform, e.g. linux/amd64.")
@click.option(
    "--register", is_flag=True, help="Install the kernelspec conda-ENV for `jkctl connect`."
)
@click.option("--force", is_flag=True, help="With --register: replace an existing kernelspec.")
@click.option(
    "--dry-run", is_flag=True, help="Write the build context and print the build command only."
)
@click.option(
    "--context-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write the build context here [default: a new temporary directory].",
)
@click.option("--cpu", metavar="REQ[:LIMIT]", help="Kernel CPU, e.g. 2 or 500m:2 [500m:2].")
@click.option("--memory", metavar="REQ[:LIMIT]", help="Kernel memory, e.g. 8Gi [1Gi:4Gi].")
@click.option("--gpu", type=click.IntRange(min=0), metavar="N", help="NVIDIA GPUs for the kernel.")
@click.option("--display-name", metavar="TEXT", help="Name shown in JupyterLab's launcher.")
@click.option(
    "--registry-secret",
    metavar="SECRET",
    help="With --builder cluster: the docker-registry Secret to push with.",
)
@click.option(
    "--builder-image",
    metavar="IMAGE",
    help="With --builder cluster: the Kaniko executor image [jkctl's pinned Kaniko].",
)
@cluster_options
@click.option("-v", "--verbose", is_flag=True, help="Print every line the builder prints.")
def conda_env(
    *,
    env_file: Path | None,
    env_name: str | None,
    tag: str,
    push: bool,
    builder_name: str | None,
    platform: str | None,
    register: bool,
    force: bool,
    dry_run: bool,
    context_dir: Path | None,
    cpu: str | None,
    memory: str | None,
    gpu: int | None,
    display_name: str | None,
    registry_secret: str | None,
    builder_image: str | None,
    kubeconfig: Path | None,
    kube_context: str | None,
    namespace: str | None,
    verbose: bool,
) -> None:
    """Build a kernel image from a conda environment.

    ENV_FILE is an environment.yml (name, channels, dependencies, pip) or an
    explicit spec (@EXPLICIT, from `conda list --explicit` or conda-lock).
    Without it, --name exports that local environment with conda or
    micromamba. The image creates the environment at /opt/conda/envs/ENV,
    adding ipykernel if it is missing, and its kernelspec runs that
    environment's own python.

    \b
    Examples:
      jkctl build-kernel-image conda-env environment.yml \\
          --tag registry.example.com/team/kernel-geo:1 --push --register --memory 8Gi
      jkctl build-kernel-image conda-env --name geo --tag registry.example.com/team/geo:1
      jkctl build-kernel-image conda-env lock.txt --name geo --tag IMAGE --dry-run
      jkctl build-kernel-image conda-env environment.yml --tag IMAGE --push \\
          --builder cluster --registry-secret team-registry
    """
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if env_file is None and env_name is None:
        raise UsageError(
            "no environment given: pass an environment file, or --name ENV to export a local "
            "environment.",
            hint="for example: jkctl build-kernel-image conda-env environment.yml --tag IMAGE",
        )
    options = KernelOptions(
        image=check_image_reference(tag),
        display_name=display_name,
        resources=Resources.from_options(cpu=cpu, memory=memory, gpu=gpu),
    )
    cluster_target = ClusterTarget(kubeconfig=kubeconfig, context=kube_context, namespace=namespace)
    local = _local_builder(
        builder_name,
        registry_secret=registry_secret,
        builder_image=builder_image,
        dry_run=dry_run,
        register=register,
        push=push,
    )
    env = _read_environment(env_file, env_name, console)
    builder = local or select_builder(
        CLUSTER_BUILDER,
        cluster=_cluster_builder(
            cluster_target,
            registry_secret=registry_secret,
            builder_image=builder_image,
            label=env.name,
            describe_only=dry_run,
        ),
    )
    if local is None and push and not registry_secret:
        console.print(
            "note: pushing without --registry-secret works only with a registry that takes "
            "anonymous pushes"
        )
    kernels_dir = paths.user_kernels_dir()
    spec_name = kernelspec_name(env.name)
    if register:
        check_registration(spec_name, kernels_dir=kernels_dir, force=force)

    directory = context_dir or Path(tempfile.mkdtemp(prefix=f"jkctl-build-{env.name}-"))
    context = write_build_context(env, options, directory)
    for note in context.notes:
        console.print(f"note: {escape(note)}")
    request = BuildRequest(
        context_dir=context.directory,
        dockerfile=context.dockerfile,
        image=tag,
        push=push,
        platform=platform,
    )
    if dry_run:
        console.print(f"wrote the build context to {escape(str(directory))}")
        if register:
            console.print(f"--register would install kernelspec {spec_name} in {kernels_dir}")
        click.echo(builder.describe(request))
        return

    try:
        with RichBuildProgress(console, verbose=verbose) as progress:
            builder.build(request, progress)
    except BuilderUnavailable:
        # Nothing was built, so a temporary context is of no use for retrying by hand.
        if context_dir is None:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    console.print(f"[green]built[/] {escape(tag)}{' and pushed it' if push else ''}")
    if register:
        target = register_kernelspec(
            context.kernelspec_dir, spec_name, kernels_dir=kernels_dir, force=force
        )
        console.print(
            f"registered kernelspec {spec_name}; it appears in JupyterLab after the next "
            "`jkctl connect`"
        )
        if not push:
            console.print(
                f"note: {escape(tag)} was not pushed; the cluster can pull it only after "
                f"`{builder.name} push {escape(tag)}`"
            )
        click.echo(str(target))
    click.echo(tag)
    if context_dir is None:
        shutil.rmtree(directory, ignore_errors=True)


def _local_builder(
    builder_name: str | None,
    *,
    registry_secret: str | None,
    builder_image: str | None,
    dry_run: bool,
    register: bool,
    push: bool,
) -> Builder | None:
    """The local builder to use, found before anything is read; None for --builder cluster."""
    if builder_name == CLUSTER_BUILDER:
        if register and not push:
            raise UsageError(
                "--register with --builder cluster needs --push: the cluster builder keeps "
                "no image it does not push.",
                hint="add --push (and --registry-secret), or build locally",
            )
        return None
    if registry_secret or builder_image:
        raise UsageError(
            "--registry-secret and --builder-image are for --builder cluster.",
            hint="add --builder cluster, or log in with your local builder to push",
        )
    return select_builder(builder_name, describe_only=dry_run)


def _cluster_builder(
    target: ClusterTarget,
    *,
    registry_secret: str | None,
    builder_image: str | None,
    label: str,
    describe_only: bool,
) -> Builder:
    from jkctl.images.cluster import ClusterBuilder
    from jkctl.kube.buildjob import KanikoSettings

    settings = KanikoSettings(image=builder_image) if builder_image else KanikoSettings()
    return ClusterBuilder(
        login=None if describe_only else target.login(),
        namespace=target.namespace,
        registry_secret=registry_secret,
        settings=settings,
        label=label,
    )


def _read_environment(
    env_file: Path | None, env_name: str | None, console: Console
) -> CondaEnvironment:
    if env_file is not None:
        return load_environment_file(env_file, name=env_name)
    assert env_name is not None  # checked first thing by the command
    with console.status(f"exporting the local environment {escape(env_name)}"):
        return export_local_environment(env_name)


class RichBuildProgress:
    """Progress on stderr: phases and steps as lines, the latest output under a spinner."""

    def __init__(self, console: Console, *, verbose: bool) -> None:
        self._console = console
        self._verbose = verbose
        self._status: Status = console.status("starting the build")
        self._heading = ""

    def __enter__(self) -> RichBuildProgress:
        self._status.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._status.stop()

    def phase(self, name: str, command: str) -> None:
        self._heading = name
        self._console.print(f"[bold]{name}[/]: {escape(command)}")
        self._status.update(escape(name))

    def step(self, step: BuildStep) -> None:
        self._heading = step.label()
        self._console.print(f"  {escape(self._heading)}")
        self._status.update(escape(self._heading))

    def output(self, line: str) -> None:
        if self._verbose:
            self._console.print(f"    {escape(line)}", style="dim")
        self._status.update(f"{escape(self._heading)}\n  [dim]{escape(line[:120])}[/]")
