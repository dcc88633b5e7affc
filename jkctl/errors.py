"""jkctl's one error hierarchy.

Every error a user can meet is a :class:`JkctlError`: a short kebab-case
``reference`` (stable, greppable, used in docs and tests), a one-sentence
``message`` saying what happened, optional ``context`` (what we were doing,
what Kubernetes said) and a ``hint`` saying what to do. The CLI renders these
fields at one boundary and maps them to exit codes; the daemon returns the
same fields as JSON, so an error reads the same wherever it happened.

Lower layers translate third-party exceptions (aiohttp, kubernetes, zmq) into
these types exactly once, at their boundary, chaining the original with
``raise ... from exc`` so ``--debug`` still shows it. Nothing above
``jkctl.kube`` ever sees a library exception.

    JkctlError
    ├── UsageError                  bad input from the user (exit code 2)
    ├── ConfigError                 settings, kubeconfig, state directory
    │   └── NoKubeconfig            no kubeconfig at all: use the local backend
    ├── KubeError                   the Kubernetes API said no, or did not answer
    │   ├── KubeUnavailable         connection refused, timeout, TLS failure
    │   ├── KubeUnauthorized        401: credentials rejected or expired
    │   ├── KubeForbidden           403: RBAC said no
    │   │   └── QuotaExceeded       403: a ResourceQuota said no
    │   ├── KubeNotFound            404
    │   ├── KubeConflict            409: AlreadyExists or Conflict
    │   ├── KubeInvalid             422: the object was rejected
    │   └── KubeGone                410: a watch's resourceVersion is too old
    ├── TunnelError                 port-forward to a pod failed or closed
    │   └── PortNotListening        the pod answered, but nothing listens on the port
    ├── TemplateError               a kernelspec or pod template is broken
    ├── KernelError                 a kernel's lifecycle went wrong
    │   ├── KernelspecNotFound
    │   ├── KernelNotFound
    │   ├── KernelStartError        the pod cannot start (image, scheduling, crash)
    │   └── SessionNotFound         no Jupyter session with that id
    ├── DaemonError                 talking to the local daemon failed
    │   ├── DaemonNotRunning
    │   ├── DaemonUnauthorized      401: no valid token on a request
    │   └── DaemonRefused           403: Host or Origin not allowed
    ├── ImageBuildError             building a kernel image failed
    │   ├── BuilderNotFound         no docker, podman or buildah to build with
    │   └── BuilderUnavailable      the builder is installed but cannot run (engine down)
    ├── PrepullError                a node cannot pull (or run) a kernel image
    ├── EnvironmentSpecError        a conda environment file is invalid (exit code 2)
    ├── KernelspecExists            registering would overwrite a kernelspec (exit code 2)
    └── TeamError                   `jkctl admin`: a team cannot be made, changed or removed
        ├── TeamNotFound            no team of that name (exit code 2)
        ├── TeamExists              create found the team, set up differently (exit code 2)
        └── TeamBusy                delete found kernels running (exit code 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, NotRequired, TypedDict


class ErrorPayload(TypedDict):
    """The wire form of an error: what the daemon returns and the CLI renders."""

    reference: str
    message: str
    context: NotRequired[str]
    hint: NotRequired[str]


class JkctlError(Exception):
    """Base of every error jkctl shows to a user."""

    reference: ClassVar[str] = "jkctl-error"
    exit_code: ClassVar[int] = 1
    #: The HTTP status the daemon answers with when this error ends a request.
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, hint: str | None = None, context: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.context = context

    def to_payload(self) -> ErrorPayload:
        payload: ErrorPayload = {"reference": self.reference, "message": self.message}
        if self.context:
            payload["context"] = self.context
        if self.hint:
            payload["hint"] = self.hint
        return payload

    @classmethod
    def from_payload(cls, payload: ErrorPayload) -> JkctlError:
        """Rebuild an error the daemon sent, as the most specific known type."""
        error_type = _BY_REFERENCE.get(payload.get("reference", ""), JkctlError)
        error = error_type(
            payload.get("message", "unknown error"),
            hint=payload.get("hint"),
            context=payload.get("context"),
        )
        return error

    def __str__(self) -> str:
        return self.message


class UsageError(JkctlError):
    reference = "usage-error"
    exit_code = 2
    http_status = 400


class ConfigError(JkctlError):
    reference = "config-error"
    exit_code = 2
    http_status = 500


class NoKubeconfig(ConfigError):
    """No kubeconfig exists anywhere jkctl looks: not an error for `jkctl connect`,
    which then runs kernels locally, but one for commands that need a cluster."""

    reference = "no-kubeconfig"


class KubeError(JkctlError):
    """The Kubernetes API refused a request or could not be reached.

    ``status`` keeps the API server's `Status` object (reason, code, details)
    for callers that branch on more than the type; it is None when the server
    never answered.
    """

    reference = "kube-error"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        context: str | None = None,
        status: Mapping[str, object] | None = None,
    ):
        super().__init__(message, hint=hint, context=context)
        self.status = status


class KubeUnavailable(KubeError):
    reference = "kube-unavailable"
    http_status = 503


class KubeUnauthorized(KubeError):
    reference = "kube-unauthorized"
    http_status = 502


class KubeForbidden(KubeError):
    reference = "kube-forbidden"
    http_status = 403


class QuotaExceeded(KubeForbidden):
    reference = "quota-exceeded"
    http_status = 403


class KubeNotFound(KubeError):
    reference = "kube-not-found"
    http_status = 404


class KubeConflict(KubeError):
    reference = "kube-conflict"
    http_status = 409


class KubeInvalid(KubeError):
    reference = "kube-invalid"
    http_status = 422


class KubeGone(KubeError):
    reference = "kube-gone"
    http_status = 410


class TunnelError(JkctlError):
    reference = "tunnel-error"
    http_status = 502


class PortNotListening(TunnelError):
    """The pod refused the connection: the process behind the port is (re)starting or gone."""

    reference = "port-not-listening"


class TemplateError(JkctlError):
    reference = "template-error"
    exit_code = 2
    http_status = 500


class KernelError(JkctlError):
    reference = "kernel-error"
    http_status = 500


class KernelspecNotFound(KernelError):
    reference = "kernelspec-not-found"
    exit_code = 2
    http_status = 404


class KernelNotFound(KernelError):
    reference = "kernel-not-found"
    exit_code = 2
    http_status = 404


class KernelStartError(KernelError):
    reference = "kernel-start-failed"
    http_status = 500


class SessionNotFound(KernelError):
    reference = "session-not-found"
    exit_code = 2
    http_status = 404


class DaemonError(JkctlError):
    reference = "daemon-error"


class DaemonNotRunning(DaemonError):
    reference = "daemon-not-running"


class DaemonUnauthorized(DaemonError):
    reference = "daemon-unauthorized"
    http_status = 401


class DaemonRefused(DaemonError):
    reference = "daemon-refused"
    http_status = 403


class ImageBuildError(JkctlError):
    reference = "image-build-failed"


class BuilderNotFound(ImageBuildError):
    reference = "builder-not-found"
    exit_code = 2


class BuilderUnavailable(ImageBuildError):
    reference = "builder-unavailable"


class PrepullError(JkctlError):
    reference = "prepull-failed"


class EnvironmentSpecError(UsageError):
    reference = "environment-spec-invalid"


class KernelspecExists(UsageError):
    reference = "kernelspec-exists"
    http_status = 409


class TeamError(JkctlError):
    reference = "team-error"


class TeamNotFound(TeamError):
    reference = "team-not-found"
    exit_code = 2
    http_status = 404


class TeamExists(TeamError):
    reference = "team-exists"
    exit_code = 2
    http_status = 409


class TeamBusy(TeamError):
    reference = "team-busy"
    exit_code = 2
    http_status = 409


def _all_subclasses(cls: type[JkctlError]) -> list[type[JkctlError]]:
    found: list[type[JkctlError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


_BY_REFERENCE: dict[str, type[JkctlError]] = {
    cls.reference: cls for cls in _all_subclasses(JkctlError)
}
