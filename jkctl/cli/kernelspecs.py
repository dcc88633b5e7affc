"""`jkctl kernelspecs list|show|validate|install`: the kernelspecs jkctl serves, checked.

- ``list``: every kernelspec the daemon would serve (the same search path:
  ``--kernel-templates``, the user's folder, the bundled ones), profiles
  multiplied out, broken ones marked, as a table or ``-o json|yaml``;
- ``show NAME``: one spec as jkctl reads it (its checked ``metadata.jkctl``
  with defaults filled in), or with ``--pod`` the Pod it renders to, using
  placeholder names;
- ``validate DIR``: check a spec folder or a folder of them, rendering each
  pod; exits 2 with every problem when something is broken;
- ``install DIR``: validate, then copy into the user's kernel folder, where
  the daemon (which reads specs on every request) serves it.

Thin, like every command: the work is :mod:`jkctl.kernels`'. Results on
stdout, notes and errors on stderr.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jkctl import paths
from jkctl.cli.output import emit, output_option
from jkctl.errors import TemplateError
from jkctl.kernels.specs import BrokenSpec, KernelSpec, KernelSpecSource

_TEMPLATES_OPTION = click.option(
    "--kernel-templates",
    "kernel_templates",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Extra kernelspec folder (repeatable), as for `jkctl connect`.",
)


@click.group("kernelspecs")
def kernelspecs() -> None:
    """List, show, check and install kernelspecs (kernels and their pods)."""


@kernelspecs.command("list")
@_TEMPLATES_OPTION
@output_option("table")
def list_(kernel_templates: tuple[Path, ...], output: str) -> None:
    """List the kernelspecs jkctl serves, with their image and resources."""
    catalog = _source(kernel_templates).catalog()
    if output != "table":
        emit(
            {
                "kernelspecs": [_summary(spec) for spec in catalog.specs.values()],
                "broken": [_broken(entry) for entry in catalog.broken.values()],
            },
            output,
        )
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("NAME", "DISPLAY NAME", "LANGUAGE", "IMAGE", "CPU", "MEMORY", "GPU", "FOLDER"):
        table.add_column(column, no_wrap=column in ("NAME", "IMAGE", "CPU", "MEMORY", "GPU"))
    rows: list[KernelSpec | BrokenSpec] = [*catalog.specs.values(), *catalog.broken.values()]
    for entry in sorted(rows, key=lambda entry: entry.name):
        if isinstance(entry, BrokenSpec):
            table.add_row(entry.name, "[red]broken[/]", "", "", "", "", "", _folder(entry.folder))
            continue
        summary = _summary(entry)
        table.add_row(
            entry.name,
            escape(entry.display_name),
            entry.language,
            entry.pod.image or "-",
            _range(summary["cpu"]),
            _range(summary["memory"]),
            str(summary["gpus"] or "-"),
            _folder(entry.resource_dir),
        )
    Console(soft_wrap=True).print(table)
    errors = Console(stderr=True, highlight=False)
    for broken in catalog.broken.values():
        errors.print(f"[red]broken[/] {broken.name}: {escape(broken.error.message)}")
        if broken.error.hint:
            errors.print(f"  hint: {escape(broken.error.hint)}")


@kernelspecs.command("show")
@click.argument("name")
@click.option("--pod", is_flag=True, help="Print the Pod it renders to (placeholder names).")
@click.option("--namespace", "-n", default="default", help="Namespace of the example Pod.")
@_TEMPLATES_OPTION
@click.option(
    "-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
def show(
    name: str, pod: bool, namespace: str, kernel_templates: tuple[Path, ...], output: str
) -> None:
    """Show kernelspec NAME as jkctl reads it, or with --pod the Pod it makes."""
    spec = _source(kernel_templates).get(name)
    if pod:
        from jkctl.kube.podtemplate import example_pod

        emit(example_pod(spec.pod, argv=spec.argv, spec_env=spec.env, namespace=namespace), output)
        return
    emit(_details(spec), output)


@kernelspecs.command("validate")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@output_option("text")
def validate(directory: Path, output: str) -> None:
    """Check the kernelspec in DIRECTORY, or every kernelspec in it.

    Each spec is read and checked as the daemon would, its profiles are
    multiplied out, and its pod is rendered with placeholder values. Exits
    with status 2 when anything is broken.
    """
    from jkctl.kernels.install import check_folder

    check = check_folder(
        directory,
        user_dir=paths.user_kernels_dir(),
        bundled_dir=paths.bundled("kernel-templates"),
    )
    if output != "text":
        emit(
            {
                "directory": str(directory),
                "ok": sorted(check.specs),
                "broken": [_broken(entry) for entry in check.broken.values()],
            },
            output,
        )
    else:
        for spec in check.specs.values():
            click.echo(f"ok      {spec.name}  ({spec.pod.image or 'no image'})")
        _print_broken(check.broken.values())
    if check.broken:
        raise TemplateError(
            f"{len(check.broken)} of {len(check.broken) + len(check.specs)} kernelspecs in "
            f"{directory} are broken.",
            hint="Fix the fields named above and run `jkctl kernelspecs validate` again.",
        )


@kernelspecs.command("install")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace kernelspecs (and files) of the same name.")
def install(directory: Path, force: bool) -> None:
    """Check, then copy the kernelspec(s) in DIRECTORY into your kernel folder.

    DIRECTORY is one kernelspec folder (with a kernel.json) or a folder of
    them; a folder's profiles.yaml and kernel-pod.yaml.j2 are copied too.
    Prints the installed paths.
    """
    from jkctl.kernels.install import check_folder, install_checked

    kernels_dir = paths.user_kernels_dir()
    bundled_dir = paths.bundled("kernel-templates")
    check = check_folder(directory, user_dir=kernels_dir, bundled_dir=bundled_dir)
    _print_broken(check.broken.values())
    installed = install_checked(check, kernels_dir=kernels_dir, force=force)
    errors = Console(stderr=True, highlight=False)
    after = KernelSpecSource(dirs=(kernels_dir, bundled_dir)).catalog()
    names = {folder.name.lower() for folder in check.folders}
    for broken in after.broken.values():
        if broken.folder.name.lower() in names:
            errors.print(
                f"[yellow]note[/]: as installed, {broken.name} is broken: "
                f"{escape(broken.error.message)}"
            )
    served = sorted(
        spec.name for spec in after.specs.values() if spec.resource_dir.name.lower() in names
    )
    errors.print(
        f"installed {', '.join(served) or 'nothing usable'} into {escape(str(kernels_dir))}; "
        "a running daemon serves them from now on (reload JupyterLab's launcher), "
        "otherwise after `jkctl connect`"
    )
    for path in installed:
        click.echo(str(path))


def _source(kernel_templates: tuple[Path, ...]) -> KernelSpecSource:
    """The search path the daemon would use: flags, else JKCTL_KERNEL_TEMPLATES or config."""
    from jkctl.daemon.settings import resolve_settings

    settings = resolve_settings(flags={"kernel_templates": kernel_templates})
    return KernelSpecSource.standard(
        extra=settings.kernel_templates,
        user_dir=settings.user_kernels_dir,
        bundled_dir=paths.bundled("kernel-templates"),
    )


def _range(amounts: dict[str, str]) -> str:
    """`0.5-2` (request-limit), or `8Gi` when they are equal."""
    request, limit = amounts["request"], amounts["limit"]
    return request if request == limit else f"{request}-{limit}"


def _folder(folder: Path) -> str:
    """A spec's folder, short: `bundled/python3`, `~/.local/share/jkctl/kernels/geo`."""
    bundled = paths.bundled("kernel-templates")
    if folder.parent == bundled:
        return f"bundled/{folder.name}"
    home = Path.home()
    return f"~/{folder.relative_to(home)}" if folder.is_relative_to(home) else str(folder)


def _summary(spec: KernelSpec) -> dict[str, Any]:
    from jkctl.kube.quantity import format_cpu, format_memory

    requests, limits = spec.pod.resources.requests, spec.pod.resources.limits
    return {
        "name": spec.name,
        "display_name": spec.display_name,
        "language": spec.language,
        "profile": spec.profile,
        "image": spec.pod.image,
        "cpu": {
            "request": format_cpu(requests.get("cpu")),
            "limit": format_cpu(limits.get("cpu")),
        },
        "memory": {
            "request": format_memory(requests.get("memory")),
            "limit": format_memory(limits.get("memory")),
        },
        "gpus": spec.pod.resources.gpus,
        "folder": str(spec.resource_dir),
        "source": spec.source,
    }


def _details(spec: KernelSpec) -> dict[str, Any]:
    template = spec.pod.pod_template
    return {
        "name": spec.name,
        "display_name": spec.display_name,
        "language": spec.language,
        "profile": spec.profile,
        "folder": str(spec.resource_dir),
        "source": spec.source,
        "pod_template": str(template) if template else "(jkctl's shared template)",
        "argv": list(spec.argv),
        "interrupt_mode": spec.interrupt_mode,
        "env": dict(spec.env),
        "metadata": {"jkctl": spec.pod.to_json()},
    }


def _broken(entry: BrokenSpec) -> dict[str, Any]:
    return {
        "name": entry.name,
        "folder": str(entry.folder),
        "error": dict(entry.error.to_payload()),
    }


def _print_broken(entries: Iterable[BrokenSpec]) -> None:
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    for entry in entries:
        error = entry.error
        errors.print(f"[red]broken[/]  {entry.name}: {escape(error.message)}")
        if error.context:
            errors.print(escape(error.context))
        if error.hint:
            errors.print(f"  hint: {escape(error.hint)}")
