"""The kernel manager: the table of kernels, and starting, stopping and finding them.

It validates a launch request (kernelspec name, ``KERNEL_*`` variables),
asks the backend to launch, and returns the :class:`~jkctl.kernels.kernel.Kernel`
once it answers. Kernels leave the table when they are shut down or die.
On daemon shutdown it stops every kernel, or detaches them when the backend
lets kernels outlive the daemon and the user did not ask to stop them.

It owns the daemon's ZeroMQ context, shared by every kernel's sockets, and
the warm pool (:mod:`jkctl.kernels.pool`): a launch request for a kernelspec
with a pool gets a pooled kernel when its ``KERNEL_*`` variables change
nothing about the kernel (the backend says which do), claimed for its user
before it is handed over.

What this module does not do: HTTP (``jkctl.daemon``) or the per-kernel state
machine (``jkctl.kernels.kernel``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zmq

from jkctl.backends.base import Backend, KernelHandle
from jkctl.errors import ConfigError, JkctlError, KernelNotFound, QuotaExceeded, UsageError
from jkctl.kernels.ids import resolve_kernel_id
from jkctl.kernels.kernel import Kernel
from jkctl.kernels.pool import WarmPool
from jkctl.kernels.settings import KernelSettings
from jkctl.kernels.specs import KernelSpec, KernelSpecSource

logger = logging.getLogger(__name__)

#: Enterprise Gateway's launch variables and the like; only these reach a backend.
_LAUNCH_VARIABLE = re.compile(r"^KERNEL_[A-Z0-9_]{1,64}$")
_MAX_VALUE_LENGTH = 4096
#: ZeroMQ's default of 1023 sockets would cap a daemon at ~250 kernels (4 sockets each).
_MAX_SOCKETS = 32768


class KernelManager:
    def __init__(
        self, *, backend: Backend, specs: KernelSpecSource, settings: KernelSettings
    ) -> None:
        self.backend = backend
        self.specs = specs
        self._settings = settings
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._context.set(zmq.MAX_SOCKETS, _MAX_SOCKETS)
        self._kernels: dict[str, Kernel] = {}
        self.pool = WarmPool(sizes=dict(settings.warm_pool), start=self._start_pooled)

    def list(self) -> list[Kernel]:
        return list(self._kernels.values())

    def get(self, kernel_id: str) -> Kernel:
        kernel = self._kernels.get(kernel_id)
        if kernel is None:
            raise KernelNotFound(
                f"There is no kernel with id {kernel_id}.",
                hint="It may have been shut down or died; GET /api/kernels lists the running ones.",
            )
        return kernel

    def find(self, prefix: str) -> Kernel:
        """The kernel whose id starts with ``prefix`` (unique prefixes, as git takes them)."""
        return self._kernels[resolve_kernel_id(prefix, self._kernels, where="in this daemon")]

    async def open(self) -> None:
        """Re-attach the kernels left running, then start filling the warm pool."""
        await self.adopt()
        for name in self.pool.kernelspecs:
            try:
                self.specs.get(name)
            except JkctlError as error:
                raise ConfigError(
                    f"The warm pool names kernelspec '{name}', which cannot be started: "
                    f"{error.message}",
                    hint="Fix the warm_pool setting (JKCTL_WARM_POOL, --warm-pool); "
                    "`jkctl kernelspecs list` shows the kernelspecs.",
                ) from error
        self.pool.open()

    async def start_kernel(self, *, name: str | None = None, env: Any = None) -> Kernel:
        """Launch a kernel (or take one from the warm pool) and return once it answers."""
        spec = self.specs.get(name) if name else self._default_spec()
        launch_env = validate_launch_env(env)
        if self.backend.pool_can_serve(launch_env) and (kernel := await self._from_pool(spec)):
            return kernel
        try:
            kernel = await self._launch(spec, launch_env)
        except QuotaExceeded:
            # Kernels waiting in the warm pool hold part of the team's quota; a user's
            # kernel comes first.
            if not await self.pool.release_one(keep=spec.name):
                raise
            kernel = await self._launch(spec, launch_env)
        self._kernels[kernel.id] = kernel
        await kernel.start()
        return kernel

    async def _from_pool(self, spec: KernelSpec) -> Kernel | None:
        """A kernel of ``spec`` from the warm pool, claimed for its user; None if none is ready
        or the claim failed (the pooled kernel is then stopped: it is no one's)."""
        kernel = self.pool.take(spec.name)
        if kernel is None:
            return None
        try:
            await kernel.handle.claim()
        except JkctlError as error:
            logger.warning("kernel %s: could not take it from the warm pool: %s", kernel.id, error)
            try:
                await kernel.shutdown(now=True)
            except JkctlError as stop_error:
                logger.warning("kernel %s: stopping it failed: %s", kernel.id, stop_error)
            return None
        kernel.last_activity = time.time()
        self._kernels[kernel.id] = kernel
        logger.info("kernel %s: %s taken from the warm pool", kernel.id, spec.name)
        return kernel

    async def _start_pooled(self, name: str) -> Kernel:
        """A kernel for the warm pool: started, but not in the table."""
        kernel = await self._launch(self.specs.get(name), {}, pooled=True)
        await kernel.start()
        return kernel

    async def _launch(
        self, spec: KernelSpec, env: dict[str, str], *, pooled: bool = False
    ) -> Kernel:
        kernel_id = str(uuid.uuid4())
        logger.info("kernel %s: starting %s", kernel_id, spec.name)
        handle = await self.backend.launch(
            spec.launch_spec(), kernel_id=kernel_id, env=env, pooled=pooled
        )
        return Kernel(
            spec=spec,
            handle=handle,
            context=self._context,
            settings=self._settings,
            on_gone=self._forget,
        )

    def _default_spec(self) -> KernelSpec:
        specs = self.specs.all()
        return self.specs.get(self.specs.default(specs))

    def _forget(self, kernel: Kernel) -> None:
        self._kernels.pop(kernel.id, None)
        self.pool.forget(kernel)

    async def adopt(self) -> None:
        """Re-attach the kernels the backend still runs from an earlier daemon."""
        handles = await self.backend.discover()

        async def attach(handle: KernelHandle) -> None:
            try:
                spec = self.specs.get(handle.kernelspec)
            except JkctlError:
                spec = KernelSpec(
                    name=handle.kernelspec,
                    resource_dir=Path(),
                    argv=(),
                    display_name=handle.kernelspec,
                    language="",
                    interrupt_mode="message",
                )
            kernel = Kernel(
                spec=spec,
                handle=handle,
                context=self._context,
                settings=self._settings,
                on_gone=self._forget,
            )
            self._kernels[kernel.id] = kernel
            try:
                await kernel.start()
            except JkctlError as error:
                logger.warning("kernel %s: could not re-attach: %s", handle.kernel_id, error)

        async with asyncio.TaskGroup() as group:
            for handle in handles:
                group.create_task(attach(handle))
        if handles:
            logger.info("re-attached %d of %d kernels", len(self._kernels), len(handles))

    async def aclose(self, *, stop_kernels: bool) -> None:
        """Stop (or detach) every kernel, then release the backend and ZeroMQ.

        Pooled kernels are always stopped: no one will ever ask for them."""
        stop = stop_kernels or not self.backend.kernels_outlive_daemon
        try:
            await self.pool.aclose()
            results = await asyncio.gather(
                *(kernel.shutdown() if stop else kernel.detach() for kernel in self.list()),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, Exception):
                    logger.error("stopping a kernel failed: %s", result, exc_info=result)
        finally:
            try:
                await self.backend.aclose()
            finally:
                self._context.term()


def validate_launch_env(env: Any) -> dict[str, str]:
    """The ``env`` of a launch request, reduced to valid ``KERNEL_*`` variables.

    Other names are ignored (Jupyter Server sends only ``KERNEL_*`` and what
    its ``allowed_envs`` names); values must be strings, numbers or booleans.
    """
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise UsageError(
            "The launch request's env must be a JSON object of variable names to strings.",
            hint='Send e.g. {"name": "python3", "env": {"KERNEL_USERNAME": "ada"}}.',
        )
    valid: dict[str, str] = {}
    for key, raw in env.items():
        if not isinstance(key, str) or not _LAUNCH_VARIABLE.match(key):
            continue
        value = str(raw) if isinstance(raw, bool | int | float) else raw
        if not isinstance(value, str):
            raise UsageError(
                f"The launch variable {key} must be a string.",
                hint="Pass plain values; structure cannot be injected into a kernel's launch.",
            )
        if len(value) > _MAX_VALUE_LENGTH or "\x00" in value:
            raise UsageError(
                f"The launch variable {key} is too long or contains a NUL character.",
                hint=f"Keep launch variables under {_MAX_VALUE_LENGTH} characters.",
            )
        valid[key] = value
    return valid
