"""`jkctl images prepull`: pull every kernel image on every node, ahead of time.

Creates (or updates) the pre-puller DaemonSet in the namespace for the
images of the kernelspecs jkctl serves (or those named with
``--kernelspec``), then shows each node's progress until every node holds
every image; ``--remove`` deletes it. The work is :mod:`jkctl.kube.prepull`'s;
progress goes to stderr, and stdout gets ``NAMESPACE/NAME`` when done.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType

import click
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from jkctl import paths
from jkctl.cli.cluster import ClusterTarget, cluster_options
from jkctl.errors import PrepullError, UsageError
from jkctl.kernels.specs import KernelSpecSource
from jkctl.kube.prepull import PrepullPlan, PrepullProgress


@click.group("images")
def images() -> None:
    """Kernel images on the cluster's nodes."""


@images.command("prepull")
@click.option(
    "--kernelspec",
    "kernelspecs",
    multiple=True,
    metavar="NAME",
    help="Pull this kernelspec's image (repeatable) [default: every kernelspec's].",
)
@click.option(
    "--kernel-templates",
    "kernel_templates",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Extra kernelspec folder (repeatable), as for `jkctl connect`.",
)
@cluster_options
@click.option("--remove", is_flag=True, help="Delete the pre-puller instead.")
@click.option("--no-wait", is_flag=True, help="Create or update it, and do not wait.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=1800.0,
    show_default=True,
    help="Seconds to wait for every node.",
)
def prepull(
    *,
    kernelspecs: tuple[str, ...],
    kernel_templates: tuple[Path, ...],
    kubeconfig: Path | None,
    kube_context: str | None,
    namespace: str | None,
    remove: bool,
    no_wait: bool,
    timeout: float,
) -> None:
    """Pull the kernel images on every node, so kernels start without a pull.

    A DaemonSet (jkctl-prepull) in the namespace pulls each distinct image
    of the chosen kernelspecs on every node their tolerations allow (GPU
    nodes included), checks that each image can run /bin/sh, and keeps a
    tiny pause container so the images stay cached. Run it again after
    adding kernelspecs; --remove deletes it.
    """
    target = ClusterTarget(kubeconfig=kubeconfig, context=kube_context, namespace=namespace)
    console = Console(stderr=True, highlight=False)
    if remove:
        asyncio.run(_remove(target, console))
        return
    plan = _plan(kernelspecs, kernel_templates)
    for entry in plan.images:
        console.print(f"image {escape(entry.image)}  ({', '.join(entry.kernelspecs)})")
    wait_for = None if no_wait else timeout
    where = asyncio.run(_prepull(target, plan, console, wait_for=wait_for))
    click.echo(where)


def _plan(names: tuple[str, ...], kernel_templates: tuple[Path, ...]) -> PrepullPlan:
    from jkctl.daemon.settings import resolve_settings
    from jkctl.kube.prepull import plan_prepull

    settings = resolve_settings(flags={"kernel_templates": kernel_templates})
    source = KernelSpecSource.standard(
        extra=settings.kernel_templates,
        user_dir=settings.user_kernels_dir,
        bundled_dir=paths.bundled("kernel-templates"),
    )
    specs = {name: source.get(name) for name in names} if names else source.all()
    plan = plan_prepull({name: spec.pod for name, spec in specs.items()})
    if not plan.images:
        raise UsageError(
            "None of the chosen kernelspecs names an image, so there is nothing to pre-pull.",
            hint="Set metadata.jkctl.image in the kernelspecs (see `jkctl kernelspecs list`).",
        )
    return plan


async def _prepull(
    target: ClusterTarget, plan: PrepullPlan, console: Console, *, wait_for: float | None
) -> str:
    """Apply the plan, then (unless `wait_for` is None) wait up to that many seconds."""
    from jkctl.kube.client import KubeClient
    from jkctl.kube.prepull import apply_prepull, wait_prepulled

    async with KubeClient(target.login()) as kube:
        namespace = target.namespace or kube.namespace
        await apply_prepull(kube, plan, namespace=namespace)
        where = f"{namespace}/{plan.name}"
        console.print(f"applied the DaemonSet {escape(where)}")
        if wait_for is None:
            return where
        with NodeTable(console) as table:
            try:
                async with asyncio.timeout(wait_for):
                    final = await wait_prepulled(
                        kube, plan, namespace=namespace, on_progress=table.update
                    )
            except TimeoutError:
                raise PrepullError(
                    f"Not every node had pulled the images after {wait_for:g} seconds.",
                    hint="Large images take a while: run `jkctl images prepull` again to keep "
                    "watching (the DaemonSet keeps pulling meanwhile), or pass --timeout.",
                ) from None
        console.print(f"[green]done[/]: {final.ready} node(s) hold every kernel image")
        return where


async def _remove(target: ClusterTarget, console: Console) -> None:
    from jkctl.kube.client import KubeClient
    from jkctl.kube.prepull import NAME, remove_prepull

    async with KubeClient(target.login()) as kube:
        namespace = target.namespace or kube.namespace
        if await remove_prepull(kube, namespace=namespace):
            console.print(f"removed the DaemonSet {namespace}/{NAME}")
        else:
            console.print(f"there is no DaemonSet {namespace}/{NAME} to remove")


class NodeTable:
    """A live table on stderr: one row per node, redrawn on every change."""

    def __init__(self, console: Console) -> None:
        self._live = Live(self._table(None), console=console, transient=False)

    def __enter__(self) -> NodeTable:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._live.stop()

    def update(self, progress: PrepullProgress) -> None:
        self._live.update(self._table(progress))

    @staticmethod
    def _table(progress: PrepullProgress | None) -> Table:
        desired = "?" if progress is None or progress.desired is None else progress.desired
        ready = 0 if progress is None else progress.ready
        table = Table(box=None, title=f"nodes ready: {ready}/{desired}", title_justify="left")
        for column in ("NODE", "IMAGES", "STATE"):
            table.add_column(column)
        for node in progress.nodes if progress else ():
            if node.problem:
                state = f"[red]{escape(node.problem)}[/]"
            elif node.ready:
                state = "[green]ready[/]"
            elif node.pulling:
                state = f"pulling {escape(node.pulling)}"
            else:
                state = "starting"
            table.add_row(node.node, f"{node.pulled}/{node.total}", state)
        return table
