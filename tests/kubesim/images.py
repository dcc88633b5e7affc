"""Simulated image pulls: per-node caches, a pull delay, and images that fail.

kubesim has no registry and no images: every container runs on the host's
Python environment, so an image name only decides pull behaviour. A pull
takes `pull_delay` seconds the first time a node sees an image (a cached image
under `Always` is re-checked at once, as a registry answers with the manifest
it already has), and fails with containerd's NotFound error for names in the
failing set. Concurrent pulls of one image on one node share the same lock,
so the second finds the first one's result; pulls of different images run in
parallel (the real kubelet serialises them by default; kubesim does not,
to keep the suite fast).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

from tests.kubesim.nodes import NodeState


def normalize(image: str) -> str:
    """`busybox` -> `docker.io/library/busybox:latest`, as containerd names it."""
    name, digest = [*image.split("@", 1), ""][:2]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    return f"{name}@{digest}" if digest else name


def image_id(image: str) -> str:
    """The repo digest containerd reports as imageID."""
    name = normalize(image)
    repo = name.split("@", 1)[0].rsplit(":", 1)[0] if "@" not in name else name.split("@")[0]
    return f"{repo}@sha256:{hashlib.sha256(name.encode()).hexdigest()}"


def default_pull_policy(image: str) -> str:
    """What the API server defaults imagePullPolicy to: Always for `:latest` or no tag."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if "@" in image:
        return "IfNotPresent"
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


class PullError(Exception):
    """A failed pull; the message is what containerd's error says."""


@dataclass(frozen=True)
class Pulled:
    image_id: str
    seconds: float
    size: int
    new: bool


class ImageService:
    def __init__(self, *, pull_delay: float, failing: frozenset[str]) -> None:
        self.pull_delay = pull_delay
        self._failing = {normalize(image) for image in failing}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._provides: dict[str, dict[str, str]] = {}

    def fail(self, *images: str) -> None:
        self._failing.update(normalize(image) for image in images)

    def provide(self, image: str, paths: dict[str, str]) -> None:
        """What the image holds beyond the host's files: absolute path -> host path.

        Every image runs on the host's files; this lets a test stand in for an
        image's own contents (a conda environment at /opt/conda/envs/NAME, a
        builder's executable) without touching the host's filesystem: each
        path appears in the container as a symlink to the host path.
        """
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"image paths are absolute, not {path!r}")
        self._provides.setdefault(normalize(image), {}).update(paths)

    def provided(self, image: str) -> dict[str, str]:
        return dict(self._provides.get(normalize(image), {}))

    def fails(self, image: str) -> bool:
        return normalize(image) in self._failing

    def present(self, node: NodeState, image: str) -> bool:
        return normalize(image) in node.images

    async def pull(self, node: NodeState, image: str) -> Pulled:
        name = normalize(image)
        started = time.monotonic()
        lock = self._locks.setdefault((node.name, name), asyncio.Lock())
        async with lock:
            if name not in node.images and self.pull_delay > 0:
                await asyncio.sleep(self.pull_delay)
            if name in self._failing:
                raise PullError(
                    f'rpc error: code = NotFound desc = failed to pull and unpack image "{name}": '
                    f'failed to resolve reference "{name}": {name}: not found'
                )
            new = name not in node.images
            if new:
                node.images[name] = 1_000_000 + int(
                    hashlib.sha256(name.encode()).hexdigest()[:5], 16
                )
                node.images_changed.notify()
        return Pulled(
            image_id=image_id(name),
            seconds=time.monotonic() - started,
            size=node.images[name],
            new=new,
        )
