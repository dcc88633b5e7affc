"""The `jkctl` entry point: the command group, lazy command loading, error rendering.

Commands live in their own modules and are imported only when invoked, so
`jkctl --help` stays fast: it must not import aiohttp, kubernetes or zmq.
This is also the one boundary where a :class:`~jkctl.errors.JkctlError`
becomes a message on stderr and an exit code; tracebacks only with --debug.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from jkctl import __version__
from jkctl.errors import JkctlError

# name -> (module, attribute, one-line help). The help is repeated here so that
# listing the commands does not import them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "admin": (
        "jkctl.cli.admin",
        "admin",
        "Divide the cluster among teams: namespaces, quotas and access.",
    ),
    "build-kernel-image": (
        "jkctl.cli.images",
        "build_kernel_image",
        "Build a kernel image from a conda environment; register its kernelspec.",
    ),
    "connect": (
        "jkctl.cli.connect",
        "connect",
        "Start the jkctl daemon and print the `jupyter lab` line that uses it.",
    ),
    "disconnect": (
        "jkctl.cli.disconnect",
        "disconnect",
        "Stop the jkctl daemon (running kernels are left alone unless --stop-kernels).",
    ),
    "images": (
        "jkctl.cli.prepull",
        "images",
        "Kernel images on the nodes: pre-pull them with a DaemonSet (images prepull).",
    ),
    "kernels": (
        "jkctl.cli.kernels",
        "kernels",
        "List, inspect, follow and stop your kernels.",
    ),
    "kernelspecs": (
        "jkctl.cli.kernelspecs",
        "kernelspecs",
        "List, show, validate and install kernelspecs (kernels and their pods).",
    ),
    "status": (
        "jkctl.cli.status",
        "status",
        "Show whether the daemon runs, its URL, uptime, backend and kernel counts.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attribute, _ = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in sorted(COMMANDS.items())]
        rows += [
            (name, command.get_short_help_str())
            for name in super().list_commands(ctx)
            if (command := super().get_command(ctx, name)) is not None and not command.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="jkctl")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Run Jupyter kernels as pods on a shared Kubernetes cluster.

    `jkctl connect` starts a local daemon that speaks the Jupyter kernel
    gateway API; point JupyterLab at it and every kernel you start runs as a
    pod in your namespace, reached through the Kubernetes API server.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def render_error(error: JkctlError) -> str:
    """The text a user reads for an error: message, then context and hint."""
    lines = [f"error: {error.message}"]
    if error.context:
        lines.append(f"  {error.context}")
    if error.hint:
        lines.append(f"hint: {error.hint}")
    lines.append(f"({error.reference})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Any:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return cli.main(args=argv, prog_name="jkctl", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as stop:
        sys.exit(stop.exit_code)
    except click.ClickException as problem:
        problem.show()
        sys.exit(problem.exit_code)
    except JkctlError as error:
        if debug:
            raise
        click.echo(render_error(error), err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
