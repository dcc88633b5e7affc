"""Checking a folder of kernelspecs, and installing it into the user's kernel folder.

``jkctl kernelspecs validate DIR`` and ``install DIR`` take either one spec
folder (it has a ``kernel.json``) or a folder of them (a kernel-templates
folder, perhaps with a ``profiles.yaml`` and a ``kernel-pod.yaml.j2``).
:func:`check_folder` sees DIR as the daemon would when serving it with
``--kernel-templates``: its specs loaded and checked, their profiles
multiplied out (profiles from DIR first, then the user's and the bundled
ones), and each spec's pod rendered with placeholder values, so a broken pod
template is caught before anything runs.

:func:`install_folder` copies the checked spec folders (and a folder's
``profiles.yaml`` and shared ``kernel-pod.yaml.j2``) into the user's kernel
folder, each atomically: assembled beside the kernel folder and renamed into
place, so the daemon, which reads specs on every request, never sees half a
spec. Nothing is replaced without ``force``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jkctl.errors import KernelspecExists, TemplateError, UsageError
from jkctl.kernels.profiles import PROFILES_FILE
from jkctl.kernels.specs import BrokenSpec, KernelSpec, KernelSpecSource
from jkctl.kube.podconfig import TEMPLATE_FILE

#: The namespace placeholder pods are rendered in.
EXAMPLE_NAMESPACE = "default"


@dataclass(frozen=True, kw_only=True)
class FolderCheck:
    """What :func:`check_folder` found in a folder."""

    directory: Path
    #: The spec folders found (DIR itself, or its subfolders with a kernel.json).
    folders: tuple[Path, ...]
    #: Files of a folder of specs that go with them: profiles.yaml, kernel-pod.yaml.j2.
    shared_files: tuple[Path, ...]
    specs: Mapping[str, KernelSpec]
    broken: Mapping[str, BrokenSpec]

    @property
    def ok(self) -> bool:
        return not self.broken


def check_folder(directory: Path, *, user_dir: Path, bundled_dir: Path) -> FolderCheck:
    """Load, check and render every kernelspec in `directory`."""
    from jkctl.kube.podtemplate import example_pod

    folders: tuple[Path, ...]
    shared: tuple[Path, ...] = ()
    if (directory / "kernel.json").is_file():
        root, folders = directory.parent, (directory,)
    elif directory.is_dir():
        root = directory
        folders = tuple(
            sorted(child for child in directory.iterdir() if (child / "kernel.json").is_file())
        )
        shared = tuple(
            path for path in (root / PROFILES_FILE, root / TEMPLATE_FILE) if path.is_file()
        )
    else:
        raise UsageError(
            f"{directory} is not a folder.",
            hint="Pass a kernelspec folder (with a kernel.json) or a folder of them.",
        )
    if not folders:
        raise UsageError(
            f"{directory} holds no kernelspec: neither it nor a folder in it has a kernel.json.",
            hint="Pass a kernelspec folder (with a kernel.json) or a folder of them.",
        )
    catalog = KernelSpecSource(dirs=(root, user_dir, bundled_dir)).catalog()
    mine = {folder.resolve() for folder in folders}
    specs: dict[str, KernelSpec] = {}
    broken = {
        name: entry for name, entry in catalog.broken.items() if entry.folder.resolve() in mine
    }
    for name, spec in catalog.specs.items():
        if spec.resource_dir.resolve() not in mine:
            continue
        try:
            example_pod(spec.pod, argv=spec.argv, spec_env=spec.env, namespace=EXAMPLE_NAMESPACE)
        except TemplateError as error:
            broken[name] = BrokenSpec(name=name, folder=spec.resource_dir, error=error)
        else:
            specs[name] = spec
    return FolderCheck(
        directory=directory,
        folders=folders,
        shared_files=shared,
        specs=specs,
        broken=dict(sorted(broken.items())),
    )


def check_target(name: str, *, kernels_dir: Path, force: bool, hint: str) -> Path:
    """Where `name` would be installed; KernelspecExists if it is taken and not `force`."""
    target = kernels_dir / name
    if target.exists() and not force:
        raise KernelspecExists(
            f"a kernelspec named {name} already exists in {kernels_dir}.", hint=hint
        )
    return target


def install_folder(source: Path, name: str, *, kernels_dir: Path, force: bool, hint: str) -> Path:
    """Copy the kernelspec folder `source` to kernels_dir/name, atomically; return its path."""
    target = check_target(name, kernels_dir=kernels_dir, force=force, hint=hint)
    kernels_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{name}-", dir=kernels_dir.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        staging.chmod(0o755)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".retired-{name}-", dir=kernels_dir.parent))
            target.replace(retired / name)
            shutil.rmtree(retired)
        staging.replace(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def install_checked(check: FolderCheck, *, kernels_dir: Path, force: bool) -> list[Path]:
    """Install what `check` found into `kernels_dir`; refuse if anything is broken or taken."""
    if check.broken:
        first = next(iter(check.broken.values()))
        raise TemplateError(
            f"{check.directory} has {len(check.broken)} broken kernelspec(s), so nothing was "
            f"installed; the first: {first.error.message}",
            hint=first.error.hint or f"Run `jkctl kernelspecs validate {check.directory}`.",
        )
    again = "Pass --force to replace it, or rename your kernelspec's folder."
    for folder in check.folders:
        check_target(folder.name.lower(), kernels_dir=kernels_dir, force=force, hint=again)
    for shared in check.shared_files:
        if (kernels_dir / shared.name).exists() and not force:
            raise KernelspecExists(
                f"Your kernel folder {kernels_dir} already has a {shared.name}.",
                hint=f"Pass --force to replace it, or merge {shared} into it by hand.",
            )
    installed = [
        install_folder(
            folder, folder.name.lower(), kernels_dir=kernels_dir, force=force, hint=again
        )
        for folder in check.folders
    ]
    for shared in check.shared_files:
        staged = kernels_dir / f".{shared.name}.new"
        shutil.copyfile(shared, staged)
        staged.replace(kernels_dir / shared.name)
        installed.append(kernels_dir / shared.name)
    return installed
