"""The cluster builder: ``build-kernel-image --builder cluster``, Kaniko as a Job in the cluster.

For laptops without docker, podman or buildah. :class:`ClusterBuilder`
implements the same :class:`~jkctl.images.builders.Builder` protocol as the
local builders: it tars the written build context, runs it through
:func:`jkctl.kube.buildjob.run_build_job` in the user's namespace (pushing
with the registry Secret named by ``--registry-secret``), feeds the Job's
log lines through a :class:`~jkctl.images.buildlog.StepTracker` into the
caller's progress, and turns a failure into an
:class:`~jkctl.errors.ImageBuildError` carrying the failing step's output.
``describe`` (``--dry-run``) prints the kubectl commands that do the same by
hand, without logging in.

Kubernetes is reached only through :mod:`jkctl.kube`.
"""

from __future__ import annotations

import asyncio
import io
import re
import shlex
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from jkctl.errors import ImageBuildError
from jkctl.images.builders import CLUSTER_BUILDER, BuildProgress, BuildRequest
from jkctl.images.buildlog import INSTRUCTIONS, StepTracker, failure_context
from jkctl.kube.buildjob import (
    CONTEXT_FILE,
    BuildJob,
    BuildOutcome,
    KanikoSettings,
    job_name,
    manifests,
)
from jkctl.kube.login import Login

_PUSH_REFUSED = re.compile(
    r"(push|PUT|HEAD).*(unauthorized|UNAUTHORIZED|denied|authentication required|403|401)"
)


@dataclass(frozen=True, kw_only=True)
class ClusterBuilder:
    """Builds in the cluster the login reaches, in `namespace` (default: the context's)."""

    #: None is enough to describe (``--dry-run``), not to build.
    login: Login | None
    namespace: str | None = None
    registry_secret: str | None = None
    settings: KanikoSettings = field(default_factory=KanikoSettings)
    #: What the Job's name says it builds (the environment's name).
    label: str = "image"

    @property
    def name(self) -> str:
        return CLUSTER_BUILDER

    def describe(self, request: BuildRequest) -> str:
        job = self._job(request, namespace=self.namespace or "", tarball=b"")
        _, manifest = manifests(job)
        if not self.namespace:
            del manifest["metadata"]["namespace"]
        kubectl = "kubectl" + (f" -n {shlex.quote(self.namespace)}" if self.namespace else "")
        context = shlex.quote(str(request.context_dir))
        return "\n".join(
            [
                f"tar -czf - -C {context} . | {kubectl} create configmap {job.name} "
                f"--from-file={CONTEXT_FILE}=/dev/stdin",
                f"{kubectl} create -f - <<'EOF'",
                yaml.safe_dump(manifest, sort_keys=False).rstrip(),
                "EOF",
                f"{kubectl} logs --follow job/{job.name}",
            ]
        )

    def build(self, request: BuildRequest, progress: BuildProgress) -> None:
        asyncio.run(self.run(request, progress))

    async def run(self, request: BuildRequest, progress: BuildProgress) -> None:
        """Build (and push) in the cluster; what `build` runs in its own event loop."""
        from jkctl.kube.buildjob import check_registry_secret, run_build_job
        from jkctl.kube.client import KubeClient

        if self.login is None:
            raise ImageBuildError(
                "the cluster builder was set up to describe builds only.",
                hint="pass a kubeconfig login to build",
            )
        tarball = context_tarball(request.context_dir)
        tracker = StepTracker(expected_steps=count_steps(request.dockerfile))
        async with KubeClient(self.login) as kube:
            namespace = self.namespace or kube.namespace
            if self.registry_secret:
                await check_registry_secret(kube, self.registry_secret, namespace=namespace)
            job = self._job(request, namespace=namespace, tarball=tarball)
            shown = f"Kaniko Job {namespace}/{job.name} ({self.settings.image})"
            progress.phase("build and push" if request.push else "build", shown)

            def on_line(line: str) -> None:
                step = tracker.feed(line)
                if step is not None:
                    progress.step(step)
                progress.output(line)

            outcome = await run_build_job(kube, job, on_line=on_line, on_status=progress.output)
        if not outcome.succeeded:
            raise self._failure(outcome, tracker, job, request)

    def _job(self, request: BuildRequest, *, namespace: str, tarball: bytes) -> BuildJob:
        return BuildJob(
            name=job_name(self.label),
            namespace=namespace,
            image=request.image,
            push=request.push,
            context_tarball=tarball,
            dockerfile=request.dockerfile.relative_to(request.context_dir).as_posix()
            if request.dockerfile.is_relative_to(request.context_dir)
            else request.dockerfile.name,
            platform=request.platform,
            registry_secret=self.registry_secret,
            settings=self.settings,
        )

    def _failure(
        self, outcome: BuildOutcome, tracker: StepTracker, job: BuildJob, request: BuildRequest
    ) -> ImageBuildError:
        logs = f"kubectl -n {job.namespace} logs job/{job.name}"
        if outcome.reason == "DeadlineExceeded":
            return ImageBuildError(
                f"the cluster build ran longer than {job.settings.deadline_seconds} seconds "
                "and was stopped.",
                hint="build a smaller environment, or build locally",
                context=outcome.message,
            )
        refused = next((line for line in tracker.tail if _PUSH_REFUSED.search(line)), None)
        if request.push and refused is not None:
            registry = request.image.split("/", 1)[0]
            secret = self.registry_secret
            return ImageBuildError(
                f"the registry refused to let the cluster builder push {request.image}.",
                hint=f"check that the Secret {secret} holds a login for {registry} that may push"
                if secret
                else f"pass --registry-secret with a docker-registry Secret for {registry}",
                context=refused,
            )
        where, context = failure_context(tracker, command=logs)
        code = f"exit code {outcome.exit_code}" if outcome.exit_code is not None else outcome.reason
        return ImageBuildError(
            f"the cluster build failed{where} ({code}).",
            hint="fix the environment file (or the Dockerfile) and run again; "
            f"`{logs}` shows the whole log until the Job is cleaned up",
            context=context,
        )


def context_tarball(directory: Path) -> bytes:
    """The build context as a gzipped tarball, paths relative to its top."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
    return buffer.getvalue()


def count_steps(dockerfile: Path) -> int | None:
    """How many instructions Kaniko will run: those after the first FROM, FROMs aside."""
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except OSError:
        return None
    logical = re.sub(r"\\\n", " ", text)
    words = [
        line.split(None, 1)[0].upper()
        for line in logical.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if "FROM" not in words:
        return None
    after = words[words.index("FROM") + 1 :]
    return sum(1 for word in after if word in INSTRUCTIONS and word != "FROM") or None
